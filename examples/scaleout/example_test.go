package main

import "os"

// exampleResult is a made-up run of the wav job: client-side and 1 and 3
// hosts, two rounds.
func exampleResult() *Result {
	res := &Result{Date: "2026-12-04T00:00:00Z", CPUs: 2, CPUCap: 0.25, LinkMbit: 1000, Rounds: 2, Rows: []*Row{
		{Job: jobWAV, Mode: modeClientSide, Hosts: 3, Objects: 120, Seconds: []float64{40, 42},
			ClientLinkBytes: []int64{190 << 20, 190 << 20}, HostLinkBytes: []int64{190 << 20, 190 << 20}, ClientCPU: []float64{10, 10.4}, HostCPU: [][]float64{{0.5, 0.5, 0.5}, {0.5, 0.6, 0.5}}},
		{Job: jobWAV, Mode: modeInsitu, Hosts: 1, Objects: 120, Seconds: []float64{40, 41},
			ClientLinkBytes: []int64{20 << 10, 22 << 10}, HostLinkBytes: []int64{20 << 10, 22 << 10}, ClientCPU: []float64{0.1, 0.1}, HostCPU: [][]float64{{10}, {10.2}}},
		{Job: jobWAV, Mode: modeInsitu, Hosts: 3, Objects: 120, Seconds: []float64{13.5, 13.7},
			ClientLinkBytes: []int64{30 << 10, 31 << 10}, HostLinkBytes: []int64{120 << 20, 122 << 20}, ClientCPU: []float64{0.1, 0.1}, HostCPU: [][]float64{{3.4, 3.3, 3.5}, {3.4, 3.4, 3.4}}},
	}}
	summarize(res)
	return res
}

// The table of a run: the speedup over client-side, and for insitu that
// speedup over the 1-host one (linear: the number of hosts).
func Example_table() {
	printTable(os.Stdout, exampleResult())
	// Output:
	// scaleout: 2 CPUs, each machine capped at 0.25 CPU and a 1000 Mbit/s link (latency 0.0ms), 2 rounds, 2026-12-04T00:00:00Z
	// job  mode         hosts  objects  seconds (median [min–max])  speedup            vs 1 host  client link  per obj  hosts' links  client CPU s  host CPU s (median per host)
	// wav  client-side  3      120      41.00 [40.00–42.00]         1.00x [0.98–1.02]  -          190.0 MiB    1.6 MiB  190.0 MiB     10.20         0.5 0.6 0.5
	// wav  insitu       1      120      40.50 [40.00–41.00]         1.01x [1.00–1.02]  1.00x      21.0 KiB     179 B    21.0 KiB      0.10          10.1
	// wav  insitu       3      120      13.60 [13.50–13.70]         3.01x [2.99–3.04]  2.98x      30.5 KiB     260 B    121.0 MiB     0.10          3.4 3.3 3.5
}
