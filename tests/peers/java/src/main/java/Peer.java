import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeSet;
import java.util.concurrent.Future;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.Utils;

/**
 * The Java peer of kafka-once's interop tests: the official client behind a small CLI.
 *
 * <pre>
 * Peer produce   --bootstrap B --topic T [--compression none|gzip|snappy|lz4|zstd] [--input FILE|-]
 *                [--transactional-id ID [--end commit|abort]] [--idempotence true|false] [--acks all|1|0]
 *                [--linger-ms N] [--batch-size N] [--max-request-size N]
 * Peer consume   --bootstrap B --topic T --count N [--isolation read_uncommitted|read_committed]
 *                [--timeout-ms N]
 * Peer group-consume --bootstrap B --topic T --group G --strategy range|cooperative-sticky
 *                --duration-ms N
 * Peer partition --partitions N [--base64]      (keys on stdin, one per line)
 * Peer partition --hash [--base64]              (the raw Utils.murmur2 of each key)
 * </pre>
 *
 * <p>produce reads JSON lines, one record each:
 * {"key": {"utf8": "k"} | {"base64": "..."} | null, "value": same | {"generator": "mod251", "len": N},
 *  "headers": [{"key": "h", "value": same-as-key}], "timestamp": ms | null, "partition": p | null}
 * and prints one JSON line per delivered record: {"partition": p, "offset": o, "timestamp": t}.
 *
 * <p>consume assigns every partition of the topic from the beginning (no group) and prints one JSON
 * line per record: {"partition", "offset", "timestamp", "timestamp_type", "key", "value",
 * "headers"} with keys, values and header values as {"base64": "..."} or null. It fails when fewer
 * than N records arrive within the timeout.
 *
 * <p>group-consume subscribes to T in group G with the given assignor (from the earliest offset,
 * no commits), polls for N ms and prints one JSON line per rebalance callback:
 * {"event": "assigned" | "revoked" | "lost", "partitions": [p, ...], "owned": [p, ...]}, where
 * partitions are the callback's (all of them for an eager assignor, the increment for a
 * cooperative one) and owned is the resulting assignment; at the end
 * {"event": "final", "partitions": [...]}, then it closes (leaving the group).
 *
 * <p>partition prints, per key, the partition of the Java default partitioner for a keyed record:
 * {@code Utils.toPositive(Utils.murmur2(keyBytes)) % numPartitions}.
 */
public final class Peer {
    private static final ObjectMapper JSON = new ObjectMapper();

    public static void main(String[] args) throws Exception {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
        if (args.length == 0) {
            usage("missing subcommand");
        }
        Map<String, String> opts = parse(args);
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        switch (args[0]) {
            case "produce" -> produce(opts, out);
            case "consume" -> consume(opts, out);
            case "group-consume" -> groupConsume(opts, out);
            case "partition" -> partition(opts, out);
            default -> usage("unknown subcommand " + args[0]);
        }
    }

    private static void usage(String why) {
        System.err.println("Peer: " + why);
        System.err.println("usage: Peer produce|consume|group-consume|partition --option value ... (see Peer.java)");
        System.exit(2);
    }

    private static Map<String, String> parse(String[] args) {
        Map<String, String> opts = new HashMap<>();
        for (int i = 1; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("--")) {
                usage("unexpected argument " + a);
            }
            String name = a.substring(2);
            if (name.equals("base64") || name.equals("hash")) {
                opts.put(name, "true");
            } else if (i + 1 < args.length) {
                opts.put(name, args[++i]);
            } else {
                usage("option " + a + " needs a value");
            }
        }
        return opts;
    }

    private static String required(Map<String, String> opts, String name) {
        String v = opts.get(name);
        if (v == null) {
            usage("missing --" + name);
        }
        return v;
    }

    // ---- produce ------------------------------------------------------------------------------

    private static void produce(Map<String, String> opts, PrintStream out) throws Exception {
        String topic = required(opts, "topic");
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, required(opts, "bootstrap"));
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, opts.getOrDefault("compression", "none"));
        p.put(ProducerConfig.ACKS_CONFIG, opts.getOrDefault("acks", "all"));
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, opts.getOrDefault("idempotence", "true"));
        p.put(ProducerConfig.LINGER_MS_CONFIG, opts.getOrDefault("linger-ms", "100"));
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, opts.getOrDefault("batch-size", "16384"));
        p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, opts.getOrDefault("max-request-size", "1048576"));
        String txnId = opts.get("transactional-id");
        if (txnId != null) {
            p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        }
        String end = opts.getOrDefault("end", "commit");
        if (!end.equals("commit") && !end.equals("abort")) {
            usage("--end must be commit or abort");
        }

        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        String input = opts.getOrDefault("input", "-");
        try (InputStream in = input.equals("-") ? System.in : new FileInputStream(input);
             BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            String line;
            while ((line = reader.readLine()) != null) {
                if (line.isBlank()) {
                    continue;
                }
                records.add(toRecord(topic, JSON.readTree(line)));
            }
        }

        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            if (txnId != null) {
                producer.initTransactions();
                producer.beginTransaction();
            }
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (ProducerRecord<byte[], byte[]> r : records) {
                sent.add(producer.send(r));
            }
            // Flush before ending the transaction, so that an aborted transaction's data is in the
            // log (abortTransaction drops batches that were not sent yet).
            producer.flush();
            List<RecordMetadata> delivered = new ArrayList<>();
            for (Future<RecordMetadata> f : sent) {
                delivered.add(f.get());
            }
            if (txnId != null) {
                if (end.equals("commit")) {
                    producer.commitTransaction();
                } else {
                    producer.abortTransaction();
                }
            }
            for (RecordMetadata m : delivered) {
                ObjectNode o = JSON.createObjectNode();
                o.put("partition", m.partition());
                o.put("offset", m.offset());
                o.put("timestamp", m.timestamp());
                out.println(JSON.writeValueAsString(o));
            }
        }
    }

    private static ProducerRecord<byte[], byte[]> toRecord(String topic, JsonNode n) {
        byte[] key = bytes(n.get("key"));
        byte[] value = bytes(n.get("value"));
        Long timestamp = n.hasNonNull("timestamp") ? n.get("timestamp").asLong() : null;
        Integer partition = n.hasNonNull("partition") ? n.get("partition").asInt() : null;
        List<Header> headers = new ArrayList<>();
        JsonNode hs = n.get("headers");
        if (hs != null && hs.isArray()) {
            for (JsonNode h : hs) {
                headers.add(new RecordHeader(h.get("key").asText(), bytes(h.get("value"))));
            }
        }
        return new ProducerRecord<>(topic, partition, timestamp, key, value, headers);
    }

    /** Bytes from {"utf8": s}, {"base64": s}, {"generator": "mod251", "len": n}; null for null. */
    static byte[] bytes(JsonNode n) {
        if (n == null || n.isNull()) {
            return null;
        }
        if (n.has("utf8")) {
            return n.get("utf8").asText().getBytes(StandardCharsets.UTF_8);
        }
        if (n.has("base64")) {
            return Base64.getDecoder().decode(n.get("base64").asText());
        }
        if (n.has("generator")) {
            String g = n.get("generator").asText();
            if (!g.equals("mod251")) {
                throw new IllegalArgumentException("unknown generator " + g);
            }
            int len = n.get("len").asInt();
            byte[] b = new byte[len];
            for (int i = 0; i < len; i++) {
                b[i] = (byte) (i % 251);
            }
            return b;
        }
        throw new IllegalArgumentException("bytes must be null, {utf8}, {base64} or {generator}: " + n);
    }

    // ---- consume ------------------------------------------------------------------------------

    private static void consume(Map<String, String> opts, PrintStream out) throws Exception {
        String topic = required(opts, "topic");
        long count = Long.parseLong(required(opts, "count"));
        long timeoutMs = Long.parseLong(opts.getOrDefault("timeout-ms", "30000"));
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, required(opts, "bootstrap"));
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, opts.getOrDefault("isolation", "read_uncommitted"));
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, String.valueOf(8 * 1024 * 1024));
        long deadline = System.currentTimeMillis() + timeoutMs;
        long seen = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            List<TopicPartition> tps = new ArrayList<>();
            List<PartitionInfo> infos = null;
            while (infos == null || infos.isEmpty()) {
                infos = consumer.partitionsFor(topic, Duration.ofMillis(Math.max(1, deadline - System.currentTimeMillis())));
                if ((infos == null || infos.isEmpty()) && System.currentTimeMillis() > deadline) {
                    System.err.println("Peer consume: topic " + topic + " not found");
                    System.exit(1);
                }
            }
            for (PartitionInfo info : infos) {
                tps.add(new TopicPartition(topic, info.partition()));
            }
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            while (seen < count && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    ObjectNode o = JSON.createObjectNode();
                    o.put("partition", r.partition());
                    o.put("offset", r.offset());
                    o.put("timestamp", r.timestamp());
                    o.put("timestamp_type", r.timestampType().name);
                    o.set("key", b64(r.key()));
                    o.set("value", b64(r.value()));
                    ArrayNode hs = o.putArray("headers");
                    for (Header h : r.headers()) {
                        ObjectNode ho = hs.addObject();
                        ho.put("key", h.key());
                        ho.set("value", b64(h.value()));
                    }
                    out.println(JSON.writeValueAsString(o));
                    seen++;
                }
            }
        }
        if (seen < count) {
            System.err.println("Peer consume: got " + seen + " of " + count + " records before the timeout");
            System.exit(1);
        }
    }

    private static JsonNode b64(byte[] b) {
        if (b == null) {
            return JSON.nullNode();
        }
        ObjectNode o = JSON.createObjectNode();
        o.put("base64", Base64.getEncoder().encodeToString(b));
        return o;
    }

    // ---- group-consume ------------------------------------------------------------------------

    private static void groupConsume(Map<String, String> opts, PrintStream out) throws Exception {
        String topic = required(opts, "topic");
        String strategy = required(opts, "strategy");
        long durationMs = Long.parseLong(required(opts, "duration-ms"));
        String assignor = switch (strategy) {
            case "range" -> RangeAssignor.class.getName();
            case "cooperative-sticky" -> CooperativeStickyAssignor.class.getName();
            default -> {
                usage("--strategy must be range or cooperative-sticky");
                yield null;
            }
        };
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, required(opts, "bootstrap"));
        p.put(ConsumerConfig.GROUP_ID_CONFIG, required(opts, "group"));
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignor);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
        p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "300");
        TreeSet<Integer> owned = new TreeSet<>();
        long deadline = System.currentTimeMillis() + durationMs;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                    // Eager assignors revoke everything before each rebalance, also when empty.
                    for (TopicPartition tp : partitions) {
                        owned.remove(tp.partition());
                    }
                    event(out, "revoked", partitions, owned);
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                    for (TopicPartition tp : partitions) {
                        owned.add(tp.partition());
                    }
                    event(out, "assigned", partitions, owned);
                }

                @Override
                public void onPartitionsLost(Collection<TopicPartition> partitions) {
                    for (TopicPartition tp : partitions) {
                        owned.remove(tp.partition());
                    }
                    event(out, "lost", partitions, owned);
                }
            });
            while (System.currentTimeMillis() < deadline) {
                consumer.poll(Duration.ofMillis(100));
            }
            ObjectNode o = JSON.createObjectNode();
            o.put("event", "final");
            ArrayNode ps = o.putArray("partitions");
            new TreeSet<>(consumer.assignment().stream().map(TopicPartition::partition).toList())
                .forEach(ps::add);
            out.println(JSON.writeValueAsString(o));
        }
    }

    private static void event(PrintStream out, String event, Collection<TopicPartition> partitions,
                              TreeSet<Integer> owned) {
        ObjectNode o = JSON.createObjectNode();
        o.put("event", event);
        ArrayNode ps = o.putArray("partitions");
        new TreeSet<>(partitions.stream().map(TopicPartition::partition).toList()).forEach(ps::add);
        ArrayNode os = o.putArray("owned");
        owned.forEach(os::add);
        out.println(o.toString());
    }

    // ---- partition ----------------------------------------------------------------------------

    private static void partition(Map<String, String> opts, PrintStream out) throws Exception {
        boolean hash = opts.containsKey("hash");
        int partitions = hash ? 0 : Integer.parseInt(required(opts, "partitions"));
        boolean base64 = opts.containsKey("base64");
        BufferedReader reader = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = reader.readLine()) != null) {
            byte[] key = base64 ? Base64.getDecoder().decode(line.trim()) : line.getBytes(StandardCharsets.UTF_8);
            if (hash) {
                out.println(Utils.murmur2(key));
            } else {
                // The default partitioner's rule for keyed records (BuiltInPartitioner.partitionForKey).
                out.println(Utils.toPositive(Utils.murmur2(key)) % partitions);
            }
        }
    }
}
