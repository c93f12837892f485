package pipeline

import (
	"fmt"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/insitu-data/insitu"
)

// Report is the outcome of a run. Its counts always add up:
// Listed = Transformed + Skipped + Failed.
type Report struct {
	Listed      int64 `json:"listed"`      // objects the source yielded (listing errors included)
	Transformed int64 `json:"transformed"` // objects transformed and stored (or counted, in a dry run)
	Skipped     int64 `json:"skipped"`     // outputs that existed (SkipExisting) or that the transform dropped (ErrSkip)
	Failed      int64 `json:"failed"`      // objects that failed: the first ones in Failures, the others counted in FailuresDropped
	BytesIn     int64 `json:"bytes_in"`    // bytes read from the source, retries included; an input the transform read by itself (Input.Path, a remote fetch) counts its Size
	BytesOut    int64 `json:"bytes_out"`   // bytes the transform wrote, retries included

	Elapsed time.Duration `json:"elapsed_ns"`
	// Failures are the first failures of the run, at most
	// Options.MaxFailures of them, in the order they happened.
	Failures []Failure `json:"failures,omitempty"`
	// FailuresDropped counts the failures beyond those: Failed =
	// len(Failures) + FailuresDropped. (In a cluster's report, the objects
	// of a node whose part did not complete count as failed with neither;
	// the node's report says why.)
	FailuresDropped int64 `json:"failures_dropped,omitempty"`
}

// Failure names an object that failed and why.
type Failure struct {
	Name    insitu.Name `json:"name"`
	Code    insitu.Code `json:"code"`
	Message string      `json:"message"`
}

// String formats the failure as "bucket/key: message (code)". A failure
// with no name (a listing error that named no object) shows "(listing)".
func (f Failure) String() string {
	name := f.Name.String()
	if f.Name == (insitu.Name{}) {
		name = "(listing)"
	}
	return fmt.Sprintf("%s: %s (%s)", name, f.Message, f.Code)
}

// String summarizes the report on a few lines, failures last.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "listed %d, transformed %d, skipped %d, failed %d\n", r.Listed, r.Transformed, r.Skipped, r.Failed)
	secs := r.Elapsed.Seconds()
	fmt.Fprintf(&b, "read %s, wrote %s in %s", humanize.Bytes(uint64(r.BytesIn)), humanize.Bytes(uint64(r.BytesOut)), r.Elapsed.Round(time.Millisecond))
	if secs > 0 {
		fmt.Fprintf(&b, " (%.1f objects/s, %s/s in, %s/s out)", float64(r.Transformed+r.Skipped)/secs,
			humanize.Bytes(uint64(float64(r.BytesIn)/secs)), humanize.Bytes(uint64(float64(r.BytesOut)/secs)))
	}
	b.WriteByte('\n')
	shown := r.Failures[:min(len(r.Failures), maxFailuresShown)]
	for _, f := range shown {
		fmt.Fprintf(&b, "  failed: %s\n", firstLine(f.String()))
	}
	if more := int64(len(r.Failures)-len(shown)) + r.FailuresDropped; more > 0 {
		fmt.Fprintf(&b, "  ... and %d more failures", more)
		if r.FailuresDropped > 0 {
			fmt.Fprintf(&b, " (%d of them not kept in the report)", r.FailuresDropped)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

const maxFailuresShown = 20

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// Stats are a live snapshot of a run, handed to Options.Progress.
type Stats struct {
	Listed      int64         `json:"listed"` // objects listed so far
	Total       int64         `json:"total"`  // objects counted before the run (Options.CountFirst); 0 when not counted
	Transformed int64         `json:"transformed"`
	Skipped     int64         `json:"skipped"`
	Failed      int64         `json:"failed"`
	BytesIn     int64         `json:"bytes_in"`
	BytesOut    int64         `json:"bytes_out"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	ListingDone bool          `json:"listing_done"` // the source is exhausted: Listed is the total
	Final       bool          `json:"final"`        // the run has ended; this is the last call
}

// Add sums two stats, such as those of two nodes' parts of one job: counts
// and bytes add up, Elapsed is the longer, and the listing is done (or the
// run final) when both are.
func (s Stats) Add(o Stats) Stats {
	return Stats{
		Listed: s.Listed + o.Listed, Total: s.Total + o.Total, Transformed: s.Transformed + o.Transformed, Skipped: s.Skipped + o.Skipped,
		Failed: s.Failed + o.Failed, BytesIn: s.BytesIn + o.BytesIn, BytesOut: s.BytesOut + o.BytesOut,
		Elapsed: max(s.Elapsed, o.Elapsed), ListingDone: s.ListingDone && o.ListingDone, Final: s.Final && o.Final,
	}
}

// Done returns the number of objects finished, whatever their outcome.
func (s Stats) Done() int64 { return s.Transformed + s.Skipped + s.Failed }

// ETA estimates the time left from the rate so far; it is 0 until the
// total is known (counted first, or the listing is done) and at least one
// object has finished.
func (s Stats) ETA() time.Duration {
	done, total := s.Done(), s.total()
	if total < 0 || done == 0 || s.Elapsed <= 0 {
		return 0
	}
	per := s.Elapsed / time.Duration(done)
	return per * time.Duration(max(total-done, 0))
}

// total returns the number of objects of the run, or -1 while unknown.
func (s Stats) total() int64 {
	switch {
	case s.ListingDone:
		return s.Listed
	case s.Total > 0:
		return s.Total
	}
	return -1
}

// Line formats the stats as one line for a terminal: objects done/total,
// objects/s, MB/s in and out, and the ETA.
func (s Stats) Line() string {
	total := fmt.Sprint(s.Listed) + "+"
	if t := s.total(); t >= 0 {
		total = fmt.Sprint(t)
	}
	secs := s.Elapsed.Seconds()
	if secs <= 0 {
		secs = 1e-9
	}
	line := fmt.Sprintf("%d/%s objects  %.1f obj/s  in %s/s  out %s/s", s.Done(), total, float64(s.Done())/secs,
		humanize.Bytes(uint64(float64(s.BytesIn)/secs)), humanize.Bytes(uint64(float64(s.BytesOut)/secs)))
	if s.Failed > 0 {
		line += fmt.Sprintf("  failed %d", s.Failed)
	}
	if eta := s.ETA(); eta > 0 && !s.Final {
		line += "  ETA " + eta.Round(time.Second).String()
	}
	return line
}
