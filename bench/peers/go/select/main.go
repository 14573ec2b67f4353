// SPDX-License-Identifier: Apache-2.0

// Command select is the Go peer of goro's select workload (WORKLOADS.md): two producers each
// send half of the indices [0, n) on their own unbuffered channel (the first [0, n/2), the
// second the rest), and one consumer runs a two-way select n times and sums what it gets, so
// the total must be n(n-1)/2. The result is the mean time of one select.
package main

import "goro/peers/internal/workload"

func produce(out chan<- int64, first, last int64) {
	for v := first; v < last; v++ {
		out <- v
	}
}

func main() {
	procs := workload.Procs()
	n := workload.Size(1000000)

	a := make(chan int64)
	b := make(chan int64)
	half := int64(n / 2)
	var total int64

	timer := workload.Start()
	go produce(a, 0, half)
	go produce(b, half, int64(n))
	for i := 0; i < n; i++ {
		select {
		case v := <-a:
			total += v
		case v := <-b:
			total += v
		}
	}
	elapsed := timer.Elapsed()

	want := int64(n) * int64(n-1) / 2
	workload.Report("select", procs, n, workload.NanosPer(elapsed, n), "ns", total == want)
}
