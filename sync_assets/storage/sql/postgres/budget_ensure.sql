insert into public.strava_rate_budget (app) values (%(app)s) on conflict (app) do nothing
