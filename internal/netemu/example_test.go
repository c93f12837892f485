package netemu_test

import (
	"context"
	"fmt"

	"github.com/insitu-data/insitu/internal/netemu"
)

// What crossed a link between two readings.
func ExampleLinkStats_Sub() {
	before := netemu.LinkStats{RxBytes: 1000, TxBytes: 200}
	after := netemu.LinkStats{RxBytes: 1_049_576, TxBytes: 30_200}
	d := after.Sub(before)
	fmt.Println(d.RxBytes, d.TxBytes, d.Bytes())
	// Output: 1048576 30000 1078576
}

// Start three hosts and a client, run a command on the client, and read
// what crossed its link and the CPU it used. (This example needs root,
// iproute2 and cgroups, so it is compiled but not run by go test.)
func ExampleStart() {
	ctx := context.Background()
	n, err := netemu.Start(ctx, &netemu.Options{Hosts: 3, Rate: 100_000_000, CPU: 0.25})
	if err != nil {
		fmt.Println(err) // says what is missing
		return
	}
	defer n.Close()
	for _, h := range n.Hosts() {
		fmt.Println(h.Name, h.IP)
	}
	c := n.Client()
	before, _ := c.Link(ctx)
	out, err := c.Command(ctx, "ip", "-brief", "addr", "show", "dev", "eth0").Output()
	fmt.Printf("%s%v\n", out, err)
	after, _ := c.Link(ctx)
	cpu, _ := c.CPU()
	fmt.Println(after.Sub(before).Bytes(), cpu)
}
