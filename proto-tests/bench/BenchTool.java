// Benchmark helper for proto-tests/suite/bench.rs: ONE long-lived JVM that takes commands on stdin,
// so the benchmarks do not pay a JVM start per produce, commit or topic creation.
// Uses only the official Kafka clients of the pinned jars.
//
// Usage: java -cp 'LIBS/*:DIR' BenchTool BOOTSTRAP
// Commands (one per line on stdin; each answers exactly one line on stdout, "ok ..." or "err ..."):
//   produce TOPIC PARTITION                 one 16-byte record, waits for the ack: "ok OFFSET"
//   fill TOPIC N                            N records of 100 bytes to EVERY partition: "ok TOTAL"
//   commit-end GROUP TOPIC                  commit the end offset of every partition: "ok PARTITIONS"
//   commit-frac GROUP TOPIC NUM DEN         commit end*NUM/DEN - (partition % 3), at least 0: "ok PARTITIONS"
//   create-topics PREFIX COUNT PARTITIONS   topics PREFIX-0 .. PREFIX-(COUNT-1), in batches: "ok COUNT"
//   delete-topics TOPIC...                  deletes the topics (frees the broker's disk): "ok COUNT"
//   quit

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class BenchTool {
    private BenchTool() {}

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        Properties pp = new Properties();
        pp.put("bootstrap.servers", bootstrap);
        pp.put("acks", "all");
        pp.put("linger.ms", "0");
        pp.put("key.serializer", ByteArraySerializer.class.getName());
        pp.put("value.serializer", ByteArraySerializer.class.getName());
        KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pp);
        Properties ap = new Properties();
        ap.put("bootstrap.servers", bootstrap);
        Admin admin = Admin.create(ap);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        System.out.println("ready");
        System.out.flush();
        String line;
        while ((line = in.readLine()) != null) {
            String[] a = line.trim().split("\\s+");
            if (a[0].equals("quit")) {
                break;
            }
            String answer;
            try {
                answer = "ok " + run(bootstrap, producer, admin, a);
            } catch (Exception e) {
                answer = "err " + e.toString().replace('\n', ' ');
            }
            System.out.println(answer);
            System.out.flush();
        }
        producer.close();
        admin.close();
        System.exit(0);
    }

    private static String run(String bootstrap, KafkaProducer<byte[], byte[]> producer, Admin admin, String[] a)
            throws Exception {
        switch (a[0]) {
            case "produce": {
                byte[] value = "bench-wakeup-rec".getBytes(StandardCharsets.UTF_8);
                RecordMetadata md = producer.send(new ProducerRecord<>(a[1], Integer.parseInt(a[2]), null, value)).get();
                return Long.toString(md.offset());
            }
            case "fill": {
                int n = Integer.parseInt(a[2]);
                byte[] value = new byte[100];
                List<PartitionInfo> parts = producer.partitionsFor(a[1]);
                List<Future<RecordMetadata>> sent = new ArrayList<>();
                for (PartitionInfo p : parts) {
                    for (int i = 0; i < n; i++) {
                        sent.add(producer.send(new ProducerRecord<>(a[1], p.partition(), null, value)));
                    }
                }
                producer.flush();
                for (Future<RecordMetadata> f : sent) {
                    f.get();
                }
                return Integer.toString(sent.size());
            }
            case "commit-end":
                return Integer.toString(commit(bootstrap, a[1], a[2], 1, 1));
            case "commit-frac":
                return Integer.toString(commit(bootstrap, a[1], a[2], Long.parseLong(a[3]), Long.parseLong(a[4])));
            case "create-topics": {
                String prefix = a[1];
                int count = Integer.parseInt(a[2]);
                int partitions = Integer.parseInt(a[3]);
                for (int start = 0; start < count; start += 100) {
                    List<NewTopic> batch = new ArrayList<>();
                    for (int i = start; i < Math.min(count, start + 100); i++) {
                        batch.add(new NewTopic(prefix + "-" + i, partitions, (short) 1));
                    }
                    admin.createTopics(batch).all().get();
                }
                return Integer.toString(count);
            }
            case "delete-topics": {
                List<String> names = java.util.Arrays.asList(a).subList(1, a.length);
                admin.deleteTopics(names).all().get();
                return Integer.toString(names.size());
            }
            default:
                throw new IllegalArgumentException("unknown command " + a[0]);
        }
    }

    /** Commits end*num/den for every partition of the topic (assign, no membership), one commitSync. */
    private static int commit(String bootstrap, String group, String topic, long num, long den) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("group.id", group);
        p.put("enable.auto.commit", "false");
        p.put("key.deserializer", ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (PartitionInfo info : consumer.partitionsFor(topic)) {
                tps.add(new TopicPartition(topic, info.partition()));
            }
            Map<TopicPartition, Long> ends = consumer.endOffsets(tps);
            Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
            for (Map.Entry<TopicPartition, Long> e : ends.entrySet()) {
                long at = e.getValue() * num / den;
                if (num != den) {
                    // vary the lag per partition so rows differ: minus 0, 1 or 2
                    at = Math.max(0, at - e.getKey().partition() % 3);
                }
                offsets.put(e.getKey(), new OffsetAndMetadata(at));
            }
            consumer.assign(tps);
            consumer.commitSync(offsets);
            return offsets.size();
        }
    }
}
