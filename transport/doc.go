// Package transport serves an [insitu.Transform] to remote callers and
// calls one that is served: the transform-server SDK and its clients.
//
// A user writes a Transform once and serves it with one call:
//
//	srv, err := transport.NewServer(myTransform, &transport.ServerOptions{Roots: []string{"/data"}})
//	if err != nil {
//		return err // a root that does not resolve, say
//	}
//	http.ListenAndServe("127.0.0.1:7101", srv)
//
// and insitu reaches it with [Dial], whose [Client] is itself an
// insitu.Transform, in one of three modes:
//
//   - [WS]: a pool of long-lived WebSocket connections, each carrying many
//     objects at once, chunked both ways under per-request credit windows,
//     with request ids, out-of-order replies and explicit error frames.
//   - [HPush]: one HTTP PUT per object with the bytes in the body, or only
//     the object's local path when the server shares the disk.
//   - [HPull]: one HTTP GET per object that names a source URL; the server
//     fetches the bytes itself (normally from the owner node on loopback).
//
// Every mode carries the object's name, size and owner and the job's args;
// a per-object timeout; and the server's errors as *insitu.Error with
// their code and message. A request may name a direct-put destination, an
// [insitu.Destination] ([Client.TransformTo], which makes a Client an
// [insitu.DirectTransform]): the server then streams the output there with
// an HTTP PUT and answers with the stored size and checksum instead of the
// bytes.
//
// Over a cluster of storage nodes with a transform server next to each
// (package node/nodetest starts such clusters), [Cluster] returns the
// transform of "remote mode": each object goes to the server next to its
// owner, which reads the bytes from the owner (over loopback, or from its
// disk) and puts the output straight to the output's owner, so that the
// caller sends and receives control messages only. A server next to a
// node sets [ServerOptions.NodeMap] so that it puts to and fetches from
// the nodes of the cluster only. [Placed] is the same over any store that
// says where its objects live ([Placement]): package seaweedfs gives one
// whose nodes are SeaweedFS's volume servers.
//
// Every wait on a peer ends: a per-object Timeout, an IOTimeout on each
// write, each wait for input or credit and each dial, an IdleTimeout for
// idle WebSocket connections, and on the client a ping of a server that
// has said nothing for IOTimeout; all have finite defaults
// ([DefaultTimeout], [DefaultIOTimeout], [DefaultIdleTimeout],
// [DefaultClientIdleTimeout]). A request takes a transform slot only once
// its work can start, and a local file is opened once, confined, and
// handed to the transform open (see [ServerOptions.Roots]).
//
// docs/PROTOCOL.md in the repository specifies every path, header, frame,
// status, error code and limit. Package transporttest holds the conformance
// suites: Run, which every mode passes, and RunServer, which checks a
// transform server, written in any language, on the wire.
//
// The servers and clients log nothing unless given a Logger.
package transport
