-- A version written by Patient/$merge names the person's earlier identity (a
-- reservnummer, say): the one change that may make a contract about another person.
ALTER TABLE contract_versions ADD COLUMN merged_from TEXT;
