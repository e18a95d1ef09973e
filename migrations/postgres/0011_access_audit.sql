-- The audit trail of every access to personal data, not only writes: who (the client
-- and the token's subject), what (the interaction, the HTTP status, the resources
-- returned), about whom (one row per person whose data was in the answer), and from
-- where (the caller's address). Rows are only ever inserted.
ALTER TABLE audit ADD COLUMN client TEXT;
ALTER TABLE audit ADD COLUMN subject TEXT;
ALTER TABLE audit ADD COLUMN interaction TEXT;
ALTER TABLE audit ADD COLUMN status INTEGER;
ALTER TABLE audit ADD COLUMN resources TEXT;
ALTER TABLE audit ADD COLUMN patient TEXT;
ALTER TABLE audit ADD COLUMN remote TEXT;
CREATE INDEX audit_by_patient ON audit (patient);
