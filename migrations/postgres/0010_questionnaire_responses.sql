-- "7 frågor" answers: QuestionnaireResponses, the patient's and care's. Kept as
-- accepted; never changed.
CREATE TABLE questionnaire_responses (
    id          TEXT PRIMARY KEY,
    -- 'patient' (the patient's questionnaire) or 'care' (a unit's own answers)
    respondent  TEXT NOT NULL,
    -- The person who answered (personnummer or samordningsnummer); NULL for care.
    patient     TEXT,
    -- The unit (HSA-id) the answers are about; for care, the unit that answered.
    unit        TEXT NOT NULL,
    -- The contract of basedOn, if any.
    care_plan   TEXT,
    -- When the answers were given (microseconds since the epoch).
    authored    BIGINT NOT NULL,
    -- The QuestionnaireResponse as stored (JSON).
    resource    TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX questionnaire_responses_by_unit ON questionnaire_responses (unit, respondent, authored);
CREATE INDEX questionnaire_responses_by_patient ON questionnaire_responses (patient);
CREATE INDEX questionnaire_responses_by_care_plan ON questionnaire_responses (care_plan);
