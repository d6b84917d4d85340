"""Session recording: the payloads of requests whose policy decision carries the
`record_payload` obligation, sealed at rest and replayable (docs/recording.md).

`recordings` captures, seals and replays them; `keys` holds the keys that seal them; `writer`
stores them off the request path and deletes them when their retention ends; `settings` is the
`recording:` section of the configuration.
"""
