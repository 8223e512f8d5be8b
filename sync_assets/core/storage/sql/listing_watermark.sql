-- The user's listing watermark (see *_listing_watermarks.sql), if any.
select listed_from, listed_through from {schema}strava_listing_watermarks where user_id = :user_id
