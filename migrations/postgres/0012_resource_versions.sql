-- Each resource of a contract has its own version: the contract version at which it
-- last changed. A version keeps, as JSON, the resources that did not change in it and
-- the version (with time and source) each carries over; the resources it changed, or
-- every resource of a version without this column, are at the version itself.
ALTER TABLE contract_versions ADD COLUMN resource_versions TEXT;
