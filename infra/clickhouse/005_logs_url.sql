-- Access lines keep the request URL's query string and the Referer (AccessLog v2's urlQuery and
-- referrer; pipelines/logs/rows.ts), both PII masked like the rest of the line. '' for lines without
-- them and for rows written before. Applied by `weir migrate` and `weir stack up`.
--
-- One statement, in a file of its own: ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS, so the file
-- cannot be run twice, and a statement that fails leaves the file unrecorded to run again whole.

ALTER TABLE weir.logs
    ADD COLUMN url_query String AFTER user_agent,   -- from=feed&v=8.4.1, without the '?'
    ADD COLUMN referrer String AFTER url_query;     -- https://live.example.com/room/7
