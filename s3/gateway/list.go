package gateway

import (
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/source"
)

// MaxKeys is the most keys (objects and common prefixes) that one
// ListObjectsV2 page holds, as on S3; a larger max-keys is lowered to it.
const MaxKeys = 1000

// skipLimit is how many keys under one common prefix a listing reads past
// before it asks the nodes to list from after the prefix instead.
const skipLimit = 1000

const s3NS = "http://s3.amazonaws.com/doc/2006-03-01/"

type listResult struct {
	XMLName               xml.Name       `xml:"ListBucketResult"`
	NS                    string         `xml:"xmlns,attr"`
	Name                  string         `xml:"Name"`
	Prefix                string         `xml:"Prefix"`
	Delimiter             string         `xml:"Delimiter,omitempty"`
	StartAfter            string         `xml:"StartAfter,omitempty"`
	ContinuationToken     string         `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string         `xml:"NextContinuationToken,omitempty"`
	KeyCount              int            `xml:"KeyCount"`
	MaxKeys               int            `xml:"MaxKeys"`
	IsTruncated           bool           `xml:"IsTruncated"`
	EncodingType          string         `xml:"EncodingType,omitempty"`
	Contents              []listObject   `xml:"Contents"`
	CommonPrefixes        []commonPrefix `xml:"CommonPrefixes"`
}

type listObject struct {
	Key          string     `xml:"Key"`
	LastModified string     `xml:"LastModified"`
	ETag         string     `xml:"ETag"`
	Size         int64      `xml:"Size"`
	StorageClass string     `xml:"StorageClass"`
	Owner        *listOwner `xml:"Owner,omitempty"`
}

type listOwner struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

type commonPrefix struct {
	Prefix string `xml:"Prefix"`
}

// serveBucket answers the requests about a bucket: ListObjectsV2,
// GetBucketLocation and HeadBucket.
func (g *Gateway) serveBucket(w http.ResponseWriter, r *http.Request, bucket string, b Bucket) {
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodHead:
		w.WriteHeader(http.StatusOK)
	case q.Has("location"):
		writeXML(w, struct {
			XMLName xml.Name `xml:"LocationConstraint"`
			NS      string   `xml:"xmlns,attr"`
			Region  string   `xml:",chardata"`
		}{NS: s3NS, Region: g.region})
	case q.Get("list-type") == "2":
		if sub := subresources(r, true); len(sub) > 0 {
			writeError(w, r, errorf(errNotImplemented, "the %s parameter is not served", sub[0]), bucket, "")
			return
		}
		g.listObjects(w, r, bucket, b)
	default:
		writeError(w, r, errorf(errNotImplemented, "of the bucket operations only ListObjectsV2 (list-type=2), GetBucketLocation and HeadBucket are served"), bucket, "")
	}
}

// listObjects answers ListObjectsV2 from the cluster's listing of the
// bucket's source, merged across the nodes in bytewise key order.
func (g *Gateway) listObjects(w http.ResponseWriter, r *http.Request, bucket string, b Bucket) {
	q := r.URL.Query()
	res := listResult{
		NS: s3NS, Name: bucket, Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"),
		StartAfter: q.Get("start-after"), ContinuationToken: q.Get("continuation-token"), MaxKeys: MaxKeys,
	}
	switch et := q.Get("encoding-type"); et {
	case "":
	case "url":
		res.EncodingType = et
	default:
		writeError(w, r, errorf(errInvalidArgument, "encoding-type %q: only url is known", et), bucket, "")
		return
	}
	if s := q.Get("max-keys"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeError(w, r, errorf(errInvalidArgument, "max-keys %q is not a number from 0", s), bucket, "")
			return
		}
		res.MaxKeys = min(n, MaxKeys)
	}
	if res.Delimiter != "" && res.Delimiter != "/" {
		writeError(w, r, errorf(errNotImplemented, "the delimiter %q is not served: only \"/\"", res.Delimiter), bucket, "")
		return
	}
	for _, p := range []struct{ what, s string }{{"prefix", res.Prefix}, {"start-after", res.StartAfter}} {
		if len(p.s) > insitu.MaxKeyLen {
			writeError(w, r, errorf(errKeyTooLong, "the %s is %d bytes, over the limit of %d", p.what, len(p.s), insitu.MaxKeyLen), bucket, "")
			return
		}
	}
	after := res.StartAfter
	if res.ContinuationToken != "" {
		t, err := base64.RawURLEncoding.DecodeString(res.ContinuationToken)
		if err != nil || len(t) == 0 || len(t) > insitu.MaxKeyLen+1 {
			writeError(w, r, errorf(errInvalidArgument, "the continuation token is not one this gateway gave"), bucket, "")
			return
		}
		after = string(t)
	}
	fetchOwner := q.Get("fetch-owner") == "true"

	var (
		last      string // the key or common prefix of the last entry
		lastCP    string // the last common prefix, while its keys are skipped
		skipped   int
		truncated bool
	)
	if res.MaxKeys == 0 {
		res.Contents, res.CommonPrefixes = []listObject{}, []commonPrefix{}
	}
	ctx := r.Context()
list:
	for res.MaxKeys > 0 {
		src, err := source.Cluster(g.c, b.Source, &source.ClusterOptions{Prefix: res.Prefix, StartAfter: after, PageSize: res.MaxKeys + 1})
		if err != nil {
			g.respond(w, r, err, bucket, "")
			return
		}
		for obj, err := range src.Objects(ctx) {
			if err != nil {
				// A node that cannot list: the listing would miss its
				// objects, so there is none.
				g.respond(w, r, err, bucket, "")
				return
			}
			key := obj.Name.Key
			if res.Delimiter != "" {
				if i := strings.Index(key[len(res.Prefix):], res.Delimiter); i >= 0 {
					cp := key[:len(res.Prefix)+i+len(res.Delimiter)]
					if cp == lastCP {
						if skipped++; skipped > skipLimit {
							// Many keys under the prefix: list from after
							// them instead of reading through them.
							after = cp + "\xff"
							continue list
						}
						continue
					}
					if res.KeyCount == res.MaxKeys {
						truncated = true
						break list
					}
					res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{Prefix: cp})
					res.KeyCount++
					lastCP, skipped = cp, 0
					// No key under cp sorts after this: \xff is in no
					// UTF-8 text.
					last = cp + "\xff"
					continue
				}
			}
			if res.KeyCount == res.MaxKeys {
				truncated = true
				break list
			}
			lo := listObject{
				Key: key, ETag: etag(obj, b), Size: obj.Size, StorageClass: "STANDARD",
				LastModified: g.modTime(obj).Format("2006-01-02T15:04:05.000Z"),
			}
			if len(b.Transform) > 0 {
				lo.Size = -1 // the output's size is known only once the chain has run
			}
			if fetchOwner {
				lo.Owner = &listOwner{ID: "insitu", DisplayName: "insitu"}
			}
			res.Contents = append(res.Contents, lo)
			res.KeyCount++
			last = key
		}
		break
	}
	res.IsTruncated = truncated
	if truncated {
		res.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(last))
	}
	if res.EncodingType == "url" {
		enc := func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
		res.Prefix, res.StartAfter, res.Delimiter = enc(res.Prefix), enc(res.StartAfter), enc(res.Delimiter)
		for i := range res.Contents {
			res.Contents[i].Key = enc(res.Contents[i].Key)
		}
		for i := range res.CommonPrefixes {
			res.CommonPrefixes[i].Prefix = enc(res.CommonPrefixes[i].Prefix)
		}
	}
	writeXML(w, res)
}

// listBuckets answers ListBuckets with the gateway's S3 buckets, sorted.
func (g *Gateway) listBuckets(w http.ResponseWriter) {
	type bucketEntry struct {
		Name         string `xml:"Name"`
		CreationDate string `xml:"CreationDate"`
	}
	res := struct {
		XMLName xml.Name      `xml:"ListAllMyBucketsResult"`
		NS      string        `xml:"xmlns,attr"`
		Owner   listOwner     `xml:"Owner"`
		Buckets []bucketEntry `xml:"Buckets>Bucket"`
	}{NS: s3NS, Owner: listOwner{ID: "insitu", DisplayName: "insitu"}}
	names := make([]string, 0, len(g.buckets))
	for n := range g.buckets {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		res.Buckets = append(res.Buckets, bucketEntry{Name: n, CreationDate: g.started.Format(time.RFC3339)})
	}
	writeXML(w, res)
}

// writeXML answers 200 with v as an XML document.
func writeXML(w http.ResponseWriter, v any) {
	body, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(xml.Header)+len(body)))
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(body)
}
