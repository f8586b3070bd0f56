// franz-go peer for bench/run. Subcommands:
//
//	consume --bootstrap B --topic T --count N
//	    Direct (groupless) consumption of every partition from the start; each value and a newline
//	    to stdout (as kcat and `kafka-once consume` do); stops after exactly N records; "read N" on
//	    stderr.
//	produce --bootstrap B --topic T --count N --size S [--batch-size X] [--linger-ms L]
//	    N values of S bytes without keys; acks=all and idempotence (franz-go's defaults, set
//	    explicitly); "delivered N" on stderr; exit 1 if any record failed.
//	version
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: franz-go-peer consume|produce|version --bootstrap B --topic T --count N"))
	}
	cmd := os.Args[1]
	if cmd == "version" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, d := range bi.Deps {
				if d.Path == "github.com/twmb/franz-go" {
					fmt.Printf("franz-go %s (%s)\n", d.Version, bi.GoVersion)
				}
			}
		}
		return
	}
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	bootstrap := fs.String("bootstrap", "", "bootstrap servers")
	topic := fs.String("topic", "", "topic")
	count := fs.Int64("count", 0, "records")
	size := fs.Int("size", 100, "value size (produce)")
	batch := fs.Int("batch-size", 1000000, "max batch bytes (produce)")
	linger := fs.Int("linger-ms", 5, "linger (produce)")
	_ = fs.Parse(os.Args[2:])
	if *bootstrap == "" || *topic == "" || *count <= 0 {
		fail(fmt.Errorf("--bootstrap, --topic and --count (> 0) are required"))
	}
	switch cmd {
	case "consume":
		n, err := consume(*bootstrap, *topic, *count)
		if err != nil {
			fail(err)
		}
		fmt.Fprintf(os.Stderr, "read %d\n", n)
	case "produce":
		n, err := produce(*bootstrap, *topic, *count, *size, *batch, *linger)
		if err != nil {
			fail(err)
		}
		fmt.Fprintf(os.Stderr, "delivered %d\n", n)
	default:
		fail(fmt.Errorf("unknown subcommand %s", cmd))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "franz-go-peer:", err)
	os.Exit(1)
}

func consume(bootstrap, topic string, count int64) (int64, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(bootstrap),
		kgo.ConsumeTopics(topic), // no group: every partition, consumed directly
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	var n int64
	ctx := context.Background()
	for n < count {
		fetches := cl.PollRecords(ctx, int(count-n))
		if errs := fetches.Errors(); len(errs) > 0 {
			return n, fmt.Errorf("fetch %s[%d]: %w", errs[0].Topic, errs[0].Partition, errs[0].Err)
		}
		it := fetches.RecordIter()
		for !it.Done() {
			r := it.Next()
			out.Write(r.Value)
			out.WriteByte('\n')
			n++
		}
	}
	return n, out.Flush()
}

func produce(bootstrap, topic string, count int64, size, batch, lingerMs int) (int64, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(bootstrap),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(int32(batch)),
		kgo.ProducerLinger(time.Duration(lingerMs)*time.Millisecond),
	)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	value := make([]byte, size)
	for i := range value {
		value[i] = 'x'
	}
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	ctx := context.Background()
	for i := int64(0); i < count; i++ {
		// Produce blocks while MaxBufferedRecords are in flight.
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				if failed.Add(1) == 1 {
					firstErr.Store(err)
				}
				return
			}
			ok.Add(1)
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return ok.Load(), err
	}
	if f := failed.Load(); f > 0 {
		return ok.Load(), fmt.Errorf("%d records failed, first: %v", f, firstErr.Load())
	}
	return ok.Load(), nil
}
