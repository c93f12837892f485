// Package seaweedfs plugs a SeaweedFS cluster into insitu as a store with
// locality: a [Source] whose objects carry their Owner, the volume server
// that holds their bytes, and that reads them straight from it; a [Sink]
// whose Puts can be pinned to a volume server, so an output stays on the
// node that made it; and a [Topology] that turns the volume servers the
// master lists into a [locality.Map], for transform servers placed next
// to them; and a [Placement] over a Topology, for remote mode
// (transport.Placed): each object goes to the transform server next to
// the volume server that holds it, which fetches it from there over
// loopback, and its output (the Sink is an insitu.NearSink) is pinned to
// that same volume server.
//
// Everything goes over SeaweedFS's HTTP APIs, with no SeaweedFS code
// linked in: the filer's (directory listings in JSON, paginated with
// lastFileName and limit; GET ?metadata=true for an entry's chunks; PUT of
// a file with dataNode= to pin its chunks), the master's (/dir/status for
// the volume servers, /vol/status and /dir/lookup for which servers hold a
// volume) and the volume servers' (GET /<fileId> of a chunk).
//
// Names map to the filer's paths under a root directory whose
// subdirectories are buckets: {Bucket, Key} is Root/Bucket/Key. The
// default root is "/buckets", where SeaweedFS's S3 gateway keeps its
// buckets, so a name is the bucket and key the gateway shows, and insitu's
// s3 package (the fallback, no locality) reads the same objects through
// the gateway.
//
// Every request is bounded: metadata requests by [Options.Timeout], the
// bodies of reads and writes by [Options.IOTimeout] of no progress, and
// all by the caller's context. Errors carry insitu codes: a server that
// does not answer is Unavailable (the runner retries it), a missing
// object NotFound, a URL that is not a filer's or master's and names that
// SeaweedFS or insitu cannot take InvalidArgument.
//
// Package seaweedfstest starts a real cluster on 127.0.0.1 for tests.
package seaweedfs
