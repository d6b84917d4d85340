-- Usage per caller and model (egress/limits): the answers' tokens and spend, added up per
-- minute and per day (UTC), written in batches off the request path. `period` is the start of
-- the minute or day in Unix seconds. A caller without a team or key is stored with ''
-- (a key column cannot be NULL). Spend is in micro-dollars.
CREATE TABLE usage_minute (
    period        BIGINT NOT NULL,
    user_name     TEXT NOT NULL,
    team          TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    model         TEXT NOT NULL,
    requests      BIGINT NOT NULL,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    spend_micro   BIGINT NOT NULL,
    PRIMARY KEY (period, user_name, team, key_id, model)
);
CREATE TABLE usage_day (
    period        BIGINT NOT NULL,
    user_name     TEXT NOT NULL,
    team          TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    model         TEXT NOT NULL,
    requests      BIGINT NOT NULL,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    spend_micro   BIGINT NOT NULL,
    PRIMARY KEY (period, user_name, team, key_id, model)
);
CREATE INDEX usage_day_team ON usage_day (team, period);
CREATE INDEX usage_minute_team ON usage_minute (team, period);
