-- The kill-switch state of a surface, as JSON; no row means never tripped.
SELECT state FROM killswitch WHERE namespace = :namespace AND surface = :surface;
