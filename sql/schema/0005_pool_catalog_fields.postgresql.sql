-- The pool keeps the catalog fields it was chosen on, so its quality check validates
-- what the selection saw, without joining the catalog again. Alembic revision 0005.
ALTER TABLE bandit_candidate_pool ADD COLUMN price double precision;
ALTER TABLE bandit_candidate_pool ADD COLUMN availability double precision;
ALTER TABLE bandit_candidate_pool ADD COLUMN freshness_index double precision;
