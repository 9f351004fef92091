"""Off-policy evaluation on the logged decisions (docs/data-science.md): the served
policy's propensities (``propensities``), the logged exploration data of a range
(``logs``), the estimates of a candidate policy's value (``evaluate``) and the export in
Open Bandit Pipeline's layout (``obp_export``). The math is in ``policy/``; this package
reads and writes the warehouse."""
