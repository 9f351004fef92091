-- Candidates excluded because the ranker's response already shows them (Alembic
-- revision 0007), so a pool decision replays from its row alone. JSON text; rows
-- written before this revision have '[]'.
ALTER TABLE bandit_decisions ADD COLUMN skipped_shown TEXT NOT NULL DEFAULT '[]';
