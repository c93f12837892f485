package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/insitu-data/insitu/internal/benchplot"
)

// Result is a whole run: the setting and one row per configuration.
type Result struct {
	Date       string  `json:"date"`
	Commit     string  `json:"commit,omitempty"`
	GoVersion  string  `json:"go_version"`
	CPUs       int     `json:"cpus"`
	CPUCap     float64 `json:"cpu_cap"`   // per host and client, in CPUs
	LinkMbit   int64   `json:"link_mbit"` // per host and client, each way
	LatencyMs  float64 `json:"latency_ms"`
	Rounds     int     `json:"rounds"`
	Workers    int     `json:"workers"`                // client-side, in flight
	NodeWork   int     `json:"node_workers,omitempty"` // insitu, per node; 0: the node's default
	Placement  string  `json:"placement,omitempty"`    // the clusters' map: "" by name, "key"
	ObjectSize int64   `json:"identity_object_size"`
	Seconds    float64 `json:"seconds"` // of all rounds
	Rows       []*Row  `json:"rows"`
}

// Row is one configuration: a job in a mode on a number of hosts.
type Row struct {
	Job        string `json:"job"`
	Mode       string `json:"mode"`
	Hosts      int    `json:"hosts"`
	Objects    int    `json:"objects"`
	InputBytes int64  `json:"input_bytes"`
	// Per round.
	Seconds         []float64 `json:"seconds"`
	ClientLinkBytes []int64   `json:"client_link_bytes"`
	ClientCPU       []float64 `json:"client_cpu_seconds"`
	// HostLinkBytes are the bytes that crossed the hosts' links (of the
	// cluster the row used), both ways, summed over the hosts: what the
	// client sent and got, and what the hosts sent each other.
	HostLinkBytes []int64     `json:"host_link_bytes,omitempty"`
	HostCPU       [][]float64 `json:"host_cpu_seconds"` // [round][host]
	// Summaries.
	Median float64 `json:"median_seconds"`
	Min    float64 `json:"min_seconds"`
	Max    float64 `json:"max_seconds"`
	// Speedup is the client-side median over this median; SpeedupMin and
	// SpeedupMax use this row's slowest and fastest run.
	Speedup    float64 `json:"speedup,omitempty"`
	SpeedupMin float64 `json:"speedup_min,omitempty"`
	SpeedupMax float64 `json:"speedup_max,omitempty"`
	// Scaling is Speedup over the 1-host insitu row's: linear is Hosts.
	Scaling        float64   `json:"scaling,omitempty"`
	LinkMedian     int64     `json:"client_link_bytes_median"`
	HostLinkMedian int64     `json:"host_link_bytes_median,omitempty"`
	ClientCPUMed   float64   `json:"client_cpu_seconds_median"`
	HostCPUMedians []float64 `json:"host_cpu_seconds_median"`
	Error          string    `json:"error,omitempty"`
}

func (r *Row) label() string {
	if r.Mode == modeClientSide {
		return r.Job + " client-side"
	}
	return fmt.Sprintf("%s insitu %d host%s", r.Job, r.Hosts, map[bool]string{true: "s"}[r.Hosts > 1])
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// result summarizes the rows.
func (b *bench) result(took time.Duration) *Result {
	res := &Result{
		Date: time.Now().UTC().Format(time.RFC3339), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		CPUCap: b.o.cpu, LinkMbit: b.o.mbit, LatencyMs: float64(b.o.latency) / float64(time.Millisecond),
		Rounds: b.o.rounds, Workers: b.o.workers, NodeWork: b.o.nodeWork, Placement: string(b.o.placement), ObjectSize: b.o.size, Seconds: took.Seconds(),
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				res.Commit = s.Value
			}
		}
	}
	for _, j := range b.jobs {
		for _, k := range b.configs() {
			k.job = j.name
			if r := b.rows[k]; r != nil {
				res.Rows = append(res.Rows, r)
			}
		}
	}
	summarize(res)
	return res
}

// summarize fills the rows' summaries from their runs.
func summarize(res *Result) {
	base, one := map[string]float64{}, map[string]float64{}
	for _, r := range res.Rows {
		r.Median, r.Min, r.Max = median(r.Seconds), slices.Min(r.Seconds), slices.Max(r.Seconds)
		links := make([]float64, len(r.ClientLinkBytes))
		for i, v := range r.ClientLinkBytes {
			links[i] = float64(v)
		}
		r.LinkMedian = int64(median(links))
		links = links[:0]
		for _, v := range r.HostLinkBytes {
			links = append(links, float64(v))
		}
		r.HostLinkMedian = int64(median(links))
		r.ClientCPUMed = median(r.ClientCPU)
		r.HostCPUMedians = nil
		for h := 0; len(r.HostCPU) > 0 && h < len(r.HostCPU[0]); h++ {
			var v []float64
			for _, round := range r.HostCPU {
				v = append(v, round[h])
			}
			r.HostCPUMedians = append(r.HostCPUMedians, median(v))
		}
		if r.Mode == modeClientSide {
			base[r.Job] = r.Median
		}
	}
	for _, r := range res.Rows {
		if b := base[r.Job]; b > 0 && r.Median > 0 {
			r.Speedup, r.SpeedupMin, r.SpeedupMax = b/r.Median, b/r.Max, b/r.Min
		}
		if r.Mode == modeInsitu && r.Hosts == 1 {
			one[r.Job] = r.Speedup
		}
	}
	for _, r := range res.Rows {
		if o := one[r.Job]; o > 0 && r.Mode == modeInsitu {
			r.Scaling = r.Speedup / o
		}
	}
}

// printTable prints the rows.
func printTable(w io.Writer, res *Result) {
	by := ""
	if res.Placement != "" {
		by = ", placement by " + res.Placement
	}
	fmt.Fprintf(w, "scaleout: %d CPUs, each machine capped at %.2f CPU and a %d Mbit/s link (latency %.1fms), %d rounds%s, %s\n",
		res.CPUs, res.CPUCap, res.LinkMbit, res.LatencyMs, res.Rounds, by, res.Date)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "job\tmode\thosts\tobjects\tseconds (median [min–max])\tspeedup\tvs 1 host\tclient link\tper obj\thosts' links\tclient CPU s\thost CPU s (median per host)")
	for _, r := range res.Rows {
		sp, sc := "-", "-"
		if r.Speedup > 0 {
			sp = fmt.Sprintf("%.2fx [%.2f–%.2f]", r.Speedup, r.SpeedupMin, r.SpeedupMax)
		}
		if r.Scaling > 0 {
			sc = fmt.Sprintf("%.2fx", r.Scaling)
		}
		var hc []string
		for _, v := range r.HostCPUMedians {
			hc = append(hc, fmt.Sprintf("%.1f", v))
		}
		hl := "-"
		if len(r.HostLinkBytes) > 0 {
			hl = humanBytes(r.HostLinkMedian)
		}
		mark := ""
		if r.Error != "" {
			mark = " FAILED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.2f [%.2f–%.2f]%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%s\n", r.Job, r.Mode, r.Hosts, r.Objects,
			r.Median, r.Min, r.Max, mark, sp, sc, humanBytes(r.LinkMedian), humanBytes(r.LinkMedian/int64(max(r.Objects, 1))), hl,
			r.ClientCPUMed, strings.Join(hc, " "))
	}
	tw.Flush()
}

// humanBytes writes n in B, KiB, MiB or GiB.
func humanBytes(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
}

func writeJSON(path string, res *Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func readJSON(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var res Result
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &res, nil
}

// writePlots draws, into dir, scaleout-time-JOB (seconds per
// configuration) and scaleout-speedup (the speedup over client-side
// against hosts, a series per job, with the linear line), each as .png
// and .svg.
func writePlots(dir string, res *Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	setting := fmt.Sprintf("each machine %.2f CPU, %d Mbit/s; median and min–max of %d rounds", res.CPUCap, res.LinkMbit, res.Rounds)
	var series []benchplot.Series
	var jobs []string
	for _, r := range res.Rows {
		if !slices.Contains(jobs, r.Job) {
			jobs = append(jobs, r.Job)
		}
	}
	for _, job := range jobs {
		var bars []benchplot.Bar
		s := benchplot.Series{Name: jobTitle(job)}
		for _, r := range res.Rows {
			if r.Job != job || r.Error != "" {
				continue
			}
			bars = append(bars, benchplot.Bar{Label: r.label(), Median: r.Median, Min: r.Min, Max: r.Max})
			if r.Mode == modeInsitu && r.Speedup > 0 {
				s.Points = append(s.Points, benchplot.XY{X: float64(r.Hosts), Y: r.Speedup, Min: r.SpeedupMin, Max: r.SpeedupMax})
			}
		}
		if len(bars) == 0 {
			continue
		}
		for _, ext := range []string{".png", ".svg"} {
			title := fmt.Sprintf("scaleout: %s\n%s", jobTitle(job), setting)
			if err := benchplot.Times(filepath.Join(dir, "scaleout-time-"+job+ext), title, "seconds", bars); err != nil {
				return err
			}
		}
		if len(s.Points) > 0 {
			series = append(series, s)
		}
	}
	if len(series) == 0 {
		return nil
	}
	for _, ext := range []string{".png", ".svg"} {
		title := "scaleout: speedup over client-side against hosts\n" + setting
		if err := benchplot.Speedup(filepath.Join(dir, "scaleout-speedup"+ext), title, series); err != nil {
			return err
		}
	}
	return nil
}

func jobTitle(job string) string {
	if job == jobWAV {
		return "FLAC → WAV (ffmpeg)"
	}
	return "identity"
}
