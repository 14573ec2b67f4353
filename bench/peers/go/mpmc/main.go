// SPDX-License-Identifier: Apache-2.0

// Command mpmc is the Go peer of goro's mpmc workload (WORKLOADS.md): 4 producers and 4
// consumers share one channel of capacity 128. Producer p sends the indices
// [n*p/4, n*(p+1)/4), so together they send each of [0, n) once; the channel is closed when
// all producers are done, and the consumers' sums must add up to n(n-1)/2. The result is the
// throughput in millions of items per second.
package main

import (
	"sync"

	"goro/peers/internal/workload"
)

const (
	producers = 4
	consumers = 4
	capacity  = 128
)

func main() {
	procs := workload.Procs()
	n := workload.Size(10000000)

	items := make(chan int64, capacity)
	sums := make([]int64, consumers)
	var producing, consuming sync.WaitGroup
	producing.Add(producers)
	consuming.Add(consumers)

	timer := workload.Start()
	for p := 0; p < producers; p++ {
		go func(first, last int64) {
			defer producing.Done()
			for v := first; v < last; v++ {
				items <- v
			}
		}(int64(n)*int64(p)/producers, int64(n)*int64(p+1)/producers)
	}
	for c := 0; c < consumers; c++ {
		go func(sum *int64) {
			defer consuming.Done()
			for v := range items {
				*sum += v
			}
		}(&sums[c])
	}
	producing.Wait()
	close(items)
	consuming.Wait()
	elapsed := timer.Elapsed()

	var total int64
	for _, s := range sums {
		total += s
	}
	want := int64(n) * int64(n-1) / 2
	workload.Report("mpmc", procs, n, workload.MillionPerSecond(elapsed, n), "M/s", total == want)
}
