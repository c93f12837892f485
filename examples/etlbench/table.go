package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dustin/go-humanize"
)

// results are what etlbench prints, and writes with -json.
type results struct {
	Machine    machine  `json:"machine"`
	Objects    int      `json:"objects"`
	InputBytes int64    `json:"input_bytes"`
	Repeat     int      `json:"repeat"`
	Settings   settings `json:"settings"`
	// Rows are sorted by Seconds, the rows that failed last.
	Rows []row `json:"rows"`
	// ProcessPeakRSS is the kernel's high-water mark of the process's
	// RSS (VmHWM) over the whole run, setup included; -1 when unknown.
	ProcessPeakRSS int64 `json:"process_peak_rss_bytes"`
}

// settings are the flags that shape the runs.
type settings struct {
	Channels        int `json:"channels"`
	SampleRate      int `json:"sample_rate"`
	Nodes           int `json:"nodes"`
	NodeWorkers     int `json:"node_workers"` // 0: the runner's default, GOMAXPROCS
	FFmpegSlots     int `json:"ffmpeg_slots"` // 0: no bound
	BaselineWorkers int `json:"baseline_workers"`
	// BatchSize is the most objects per ffmpeg process in the batched
	// floor and the batched rows (-batch); 0 in a file written before
	// they existed.
	BatchSize int `json:"batch_size,omitempty"`
}

// row is one configuration's line of the table.
type row struct {
	Config    string `json:"configuration"`
	Mode      string `json:"mode"`
	Transport string `json:"transport,omitempty"`
	LocalFile bool   `json:"local_file"`
	DirectPut bool   `json:"direct_put"`
	// Batch is the most objects per ffmpeg process; 0 (absent) for one
	// process per object.
	Batch int `json:"batch,omitempty"`
	// Seconds is the median of Runs, the time of each run in seconds.
	Seconds          float64   `json:"seconds"`
	Runs             []float64 `json:"runs_seconds"`
	ObjectsPerSecond float64   `json:"objects_per_second"`
	// RatioToFloor is Seconds over the (per-file) floor's,
	// RatioToBatchedFloor over the batched floor's (0 in a file written
	// before it existed); SpeedupOverBaseline the client-side baseline's
	// Seconds (one process per object) over this row's (0 without a
	// baseline).
	RatioToFloor        float64 `json:"ratio_to_floor"`
	RatioToBatchedFloor float64 `json:"ratio_to_batched_floor,omitempty"`
	SpeedupOverBaseline float64 `json:"speedup_over_client_side,omitempty"`
	// CPU is the median CPU time of a run in seconds, in all: this
	// process, the ffmpeg processes and the servers (versitygw and the
	// weed processes, whichever run); CPUSelf, CPUFFmpeg and CPUServer are
	// the medians of each part, and CPUOther the median of all but ffmpeg
	// (this process and the servers): what moving the data costs. Absent
	// where unknown.
	CPU       float64 `json:"cpu_seconds,omitempty"`
	CPUSelf   float64 `json:"cpu_seconds_etlbench,omitempty"`
	CPUFFmpeg float64 `json:"cpu_seconds_ffmpeg,omitempty"`
	CPUServer float64 `json:"cpu_seconds_versitygw,omitempty"`
	CPUOther  float64 `json:"cpu_seconds_other,omitempty"`
	// PeakRSS is the largest RSS of the process sampled during this
	// configuration's runs, in bytes; -1 when unknown.
	PeakRSS int64  `json:"peak_rss_bytes"`
	Error   string `json:"error,omitempty"`
}

// machine describes where the numbers come from.
type machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model,omitempty"`
	Memory     int64  `json:"memory_bytes,omitempty"`
	OS         string `json:"os"`
	Go         string `json:"go"`
	FFmpeg     string `json:"ffmpeg,omitempty"`
	Time       string `json:"time"`
}

func describeMachine(ctx context.Context) machine {
	m := machine{
		CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version(),
		Time: time.Now().UTC().Format(time.RFC3339),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.Memory = kb << 10
		}
	}
	if out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-version").Output(); err == nil {
		line, _, _ := strings.Cut(string(out), "\n")
		if f := strings.Fields(line); len(f) >= 3 {
			m.FFmpeg = f[2]
		}
	}
	return m
}

// results computes the rows from the runs.
func (b *bench) results() *results {
	res := &results{Machine: b.machine, Objects: len(b.inputs), InputBytes: b.inputBytes, Repeat: b.o.repeat,
		Settings: settings{Channels: b.o.channels, SampleRate: b.o.rate, Nodes: b.o.nodes, NodeWorkers: b.o.nodeWorkers,
			FFmpegSlots: b.o.slots, BaselineWorkers: b.o.baseWorkers, BatchSize: b.o.batch}}
	var floor, batchedFloor, base float64
	for _, c := range b.configs {
		r := row{Config: c.name, Mode: c.mode, Transport: c.transport, LocalFile: c.localFile, DirectPut: c.directPut, Batch: c.batch, PeakRSS: c.peakRSS}
		if c.err != nil {
			r.Error = c.err.Error()
		}
		for _, t := range c.times {
			r.Runs = append(r.Runs, t.Seconds())
		}
		if len(c.cpu) > 0 {
			var all, self, ff, srv, other []float64
			for _, t := range c.cpu {
				all = append(all, t.total().Seconds())
				self = append(self, t.self.Seconds())
				ff = append(ff, t.children.Seconds())
				srv = append(srv, t.running.Seconds())
				other = append(other, (t.self + t.running).Seconds())
			}
			r.CPU, r.CPUSelf, r.CPUFFmpeg, r.CPUServer, r.CPUOther = median(all), median(self), median(ff), median(srv), median(other)
		}
		if len(r.Runs) > 0 {
			r.Seconds = median(r.Runs)
			r.ObjectsPerSecond = float64(len(b.inputs)) / r.Seconds
		}
		if r.Error == "" {
			switch c.mode {
			case "floor":
				floor = r.Seconds
			case "floor-batched":
				batchedFloor = r.Seconds
			case "client-side":
				if c.batch == 0 {
					base = r.Seconds
				}
			}
		}
		res.Rows = append(res.Rows, r)
	}
	for i := range res.Rows {
		r := &res.Rows[i]
		if r.Error != "" || r.Seconds == 0 {
			continue
		}
		if floor > 0 {
			r.RatioToFloor = r.Seconds / floor
		}
		if batchedFloor > 0 {
			r.RatioToBatchedFloor = r.Seconds / batchedFloor
		}
		if base > 0 {
			r.SpeedupOverBaseline = base / r.Seconds
		}
	}
	slices.SortStableFunc(res.Rows, func(a, b row) int {
		if (a.Error == "") != (b.Error == "") {
			if a.Error == "" {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Seconds, b.Seconds)
	})
	return res
}

// median returns the median of xs (the mean of the middle two for an even
// count); xs is not changed.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// printTable writes the results as a table, with what they were measured
// on.
func printTable(w io.Writer, res *results) {
	m := res.Machine
	fmt.Fprintf(w, "\n%d objects (%s of FLAC), median of %d runs; %d CPUs (%s), %s, %s, ffmpeg %s\n",
		res.Objects, humanize.IBytes(uint64(res.InputBytes)), res.Repeat, m.CPUs, m.CPUModel,
		humanize.IBytes(uint64(max(m.Memory, 0))), m.Go, m.FFmpeg)
	st := res.Settings
	workers, slots := "GOMAXPROCS", "no bound"
	if st.NodeWorkers > 0 {
		workers = fmt.Sprint(st.NodeWorkers)
	}
	if st.FFmpegSlots > 0 {
		slots = fmt.Sprint(st.FFmpegSlots)
	}
	batches := ""
	if st.BatchSize > 0 {
		batches = fmt.Sprintf("; batched rows: up to %d objects per ffmpeg process (batches in flight per node, not objects)", st.BatchSize)
	}
	fmt.Fprintf(w, "-ac %d -ar %d; %d nodes, %s objects in flight per node; ffmpeg processes at once beyond the floors: %s%s\n\n",
		st.Channels, st.SampleRate, st.Nodes, workers, slots, batches)
	width := len("configuration")
	for _, r := range res.Rows {
		width = max(width, utf8.RuneCountInString(r.Config))
	}
	pad := func(s string) string { return s + strings.Repeat(" ", width-utf8.RuneCountInString(s)) }
	fmt.Fprintf(w, "%s  %8s  %13s  %9s  %7s  %9s  %22s  %9s  %7s  %7s  %6s\n", pad("configuration"), "seconds", "min–max", "objects/s", "× floor", "× batched", "speedup vs client-side", "peak RSS", "CPU s", "ffmpeg", "other")
	for _, r := range res.Rows {
		if r.Error != "" {
			fmt.Fprintf(w, "%s  %8s\n", pad(r.Config), "FAILED")
			continue
		}
		spread := "-"
		if len(r.Runs) > 1 {
			spread = fmt.Sprintf("%.2f–%.2f", slices.Min(r.Runs), slices.Max(r.Runs))
		}
		batched := "-"
		if r.RatioToBatchedFloor > 0 {
			batched = fmt.Sprintf("%.3f", r.RatioToBatchedFloor)
		}
		speedup := "-"
		if r.SpeedupOverBaseline > 0 {
			speedup = fmt.Sprintf("%.2fx", r.SpeedupOverBaseline)
		}
		cpu, ff, other := "-", "-", "-"
		if r.CPU > 0 {
			if r.CPUOther == 0 { // a file written before CPUOther existed
				r.CPUOther = r.CPUSelf + r.CPUServer
			}
			cpu, ff, other = fmt.Sprintf("%.2f", r.CPU), fmt.Sprintf("%.2f", r.CPUFFmpeg), fmt.Sprintf("%.2f", r.CPUOther)
		}
		fmt.Fprintf(w, "%s  %8.2f  %13s  %9.1f  %7.3f  %9s  %22s  %9s  %7s  %7s  %6s\n", pad(r.Config), r.Seconds, spread, r.ObjectsPerSecond, r.RatioToFloor, batched, speedup, rssString(r.PeakRSS), cpu, ff, other)
	}
	if res.ProcessPeakRSS >= 0 {
		fmt.Fprintf(w, "\npeak RSS: this process's, sampled every 50ms during each configuration's runs (ffmpeg, versitygw and weed are other processes); whole run VmHWM %s\n", rssString(res.ProcessPeakRSS))
	}
	if len(res.Rows) > 0 && res.Rows[0].CPU > 0 {
		fmt.Fprintf(w, "CPU s: median CPU time of a run, user + system: in all, of the ffmpeg processes, and of everything else (this process and the servers, versitygw and weed: moving the data)\n")
	}
}

func rssString(v int64) string {
	if v < 0 {
		return "-"
	}
	return humanize.IBytes(uint64(v))
}

// readJSON reads results written by writeJSON.
func readJSON(path string) (*results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var res results
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &res, nil
}

// writeJSON writes res to path.
func writeJSON(path string, res *results) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
