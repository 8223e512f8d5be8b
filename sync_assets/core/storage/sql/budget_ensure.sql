insert into {schema}strava_rate_budget (app) values (:app) on conflict (app) do nothing
