"""The gateway's in-memory caches, in every process that serves the Core API: each loads a view
its reactions feed and follows the stream from there (`authpi.messaging.follower`)."""
