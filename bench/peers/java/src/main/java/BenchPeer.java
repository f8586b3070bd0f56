import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The Java kafka-clients peer for bench/run.
 *
 * <pre>
 * consume --bootstrap B --topic T --count N
 *     assign every partition, seek to the beginning (no group); each value and a newline to
 *     stdout (as kcat and `kafka-once consume` do); stop after exactly N records; "read N" on stderr.
 * produce --bootstrap B --topic T --count N --size S [--batch-size X] [--linger-ms L]
 *     N values of S bytes without keys, acks=all, enable.idempotence=true; "delivered N" on
 *     stderr; exit 1 if any send failed.
 * version
 * </pre>
 */
public final class BenchPeer {
    public static void main(String[] args) throws Exception {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
        if (args.length == 0) fail("usage: BenchPeer consume|produce|version --bootstrap B --topic T --count N");
        if (args[0].equals("version")) {
            System.out.println("kafka-clients " + org.apache.kafka.common.utils.AppInfoParser.getVersion()
                    + " (Java " + System.getProperty("java.version") + ")");
            return;
        }
        String bootstrap = null, topic = null;
        long count = 0;
        int size = 100, batch = 1_000_000, linger = 5;
        for (int i = 1; i + 1 < args.length; i += 2) {
            String v = args[i + 1];
            switch (args[i]) {
                case "--bootstrap" -> bootstrap = v;
                case "--topic" -> topic = v;
                case "--count" -> count = Long.parseLong(v);
                case "--size" -> size = Integer.parseInt(v);
                case "--batch-size" -> batch = Integer.parseInt(v);
                case "--linger-ms" -> linger = Integer.parseInt(v);
                default -> fail("unknown option " + args[i]);
            }
        }
        if (bootstrap == null || topic == null || count <= 0) fail("--bootstrap, --topic and --count (> 0) are required");
        switch (args[0]) {
            case "consume" -> System.err.println("read " + consume(bootstrap, topic, count));
            case "produce" -> System.err.println("delivered " + produce(bootstrap, topic, count, size, batch, linger));
            default -> fail("unknown subcommand " + args[0]);
        }
    }

    static void fail(String msg) {
        System.err.println("BenchPeer: " + msg);
        System.exit(1);
    }

    static long consume(String bootstrap, String topic, long count) throws IOException {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        long n = 0;
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (PartitionInfo pi : c.partitionsFor(topic, Duration.ofSeconds(10))) {
                tps.add(new TopicPartition(topic, pi.partition()));
            }
            if (tps.isEmpty()) fail("topic " + topic + " has no partitions");
            c.assign(tps);
            c.seekToBeginning(tps);
            OutputStream out = new BufferedOutputStream(System.out, 1 << 16);
            while (n < count) {
                ConsumerRecords<byte[], byte[]> recs = c.poll(Duration.ofMillis(100));
                if (recs.isEmpty()) out.flush();
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    if (n == count) break;
                    if (r.value() != null) out.write(r.value());
                    out.write('\n');
                    n++;
                }
            }
            out.flush();
        }
        return n;
    }

    static long produce(String bootstrap, String topic, long count, int size, int batch, int linger) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.LINGER_MS_CONFIG, Integer.toString(linger));
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, Integer.toString(batch));
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        byte[] value = new byte[size];
        java.util.Arrays.fill(value, (byte) 'x');
        AtomicLong ok = new AtomicLong(), failed = new AtomicLong();
        AtomicReference<Exception> first = new AtomicReference<>();
        try (KafkaProducer<byte[], byte[]> pr = new KafkaProducer<>(p)) {
            for (long i = 0; i < count; i++) {
                // send blocks (max.block.ms) while buffer.memory is full.
                pr.send(new ProducerRecord<>(topic, value), (md, e) -> {
                    if (e == null) ok.incrementAndGet();
                    else if (failed.incrementAndGet() == 1) first.set(e);
                });
            }
            pr.flush();
        }
        if (failed.get() > 0) fail(failed.get() + " sends failed, first: " + first.get());
        return ok.get();
    }
}
