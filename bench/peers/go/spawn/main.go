// SPDX-License-Identifier: Apache-2.0

// Command spawn is the Go peer of goro's spawn workload (WORKLOADS.md): spawn n goroutines
// that each only call sync.WaitGroup.Done, and wait for them. The check is that the wait
// returns after exactly n goroutines were started; a Done too many would panic and one too
// few would hang, so the count is what is left to verify. The result is the mean cost of one
// spawn, including its share of the wait.
package main

import (
	"sync"

	"goro/peers/internal/workload"
)

func main() {
	procs := workload.Procs()
	n := workload.Size(1000000)

	var wg sync.WaitGroup
	spawned := 0

	timer := workload.Start()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go wg.Done()
		spawned++
	}
	wg.Wait()
	elapsed := timer.Elapsed()

	workload.Report("spawn", procs, n, workload.NanosPer(elapsed, n), "ns", spawned == n)
}
