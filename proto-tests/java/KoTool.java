// Test helper for the Kafka Observer integration suite. Compiled by proto-tests/harness against the
// pinned Kafka jars; uses only the official Java client so the tests have an independent oracle.
//
// Usage: java KoTool BOOTSTRAP COMMAND ARGS...
//   produce     TOPIC PARTITION COUNT                 COUNT records to exactly that partition, acks=all
//   produce-txn TOPIC PARTITION COUNT commit|abort    the same inside one transaction, then commit/abort
//   produce-at  TOPIC PARTITION COUNT TIMESTAMP_MS    like produce, every record with that CreateTime
//   delete-records TOPIC PARTITION OFFSET             delete the records before OFFSET (the log start
//                                                     moves there); prints "log-start OFFSET"
//   commit      GROUP TOPIC PARTITION OFFSET          set a group's committed offset (assign, no membership)
//   produce-spread TOPIC P:N[,P:N...]                 N records to each partition P from one producer, one flush
//   produce-keys TOPIC KEY...                         one record per KEY (value "java-KEY"), partition chosen by
//                                                     the client's default partitioner; prints "key KEY PARTITION"
//   txn-hold    TOPIC PARTITION COUNT                 COUNT records in one transaction, left open: prints
//                                                     "offsets FIRST LAST", then reads one stdin line;
//                                                     "commit" commits, anything else or end of input aborts;
//                                                     prints "committed" or "aborted"
// Prints "offsets FIRST LAST" (produce*) or "committed OFFSET" on success; exits 1 with a message
// on stderr otherwise.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;

import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public final class KoTool {
    private KoTool() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            usage("missing arguments");
        }
        String bootstrap = args[0];
        String cmd = args[1];
        try {
            switch (cmd) {
                case "produce":
                    need(args, 5);
                    produce(bootstrap, args[2], Integer.parseInt(args[3]), Integer.parseInt(args[4]), null, null);
                    break;
                case "produce-at":
                    need(args, 6);
                    produce(bootstrap, args[2], Integer.parseInt(args[3]), Integer.parseInt(args[4]), null,
                            Long.parseLong(args[5]));
                    break;
                case "delete-records":
                    need(args, 5);
                    deleteRecords(bootstrap, args[2], Integer.parseInt(args[3]), Long.parseLong(args[4]));
                    break;
                case "produce-txn":
                    need(args, 6);
                    if (!args[5].equals("commit") && !args[5].equals("abort")) {
                        usage("produce-txn ends with commit or abort, not " + args[5]);
                    }
                    produce(bootstrap, args[2], Integer.parseInt(args[3]), Integer.parseInt(args[4]),
                            args[5].equals("commit"), null);
                    break;
                case "produce-spread":
                    need(args, 4);
                    produceSpread(bootstrap, args[2], args[3]);
                    break;
                case "produce-keys":
                    if (args.length < 4) {
                        usage("produce-keys needs a topic and at least one key");
                    }
                    produceKeys(bootstrap, args[2], java.util.Arrays.copyOfRange(args, 3, args.length));
                    break;
                case "txn-hold":
                    need(args, 5);
                    txnHold(bootstrap, args[2], Integer.parseInt(args[3]), Integer.parseInt(args[4]));
                    break;
                case "commit":
                    need(args, 6);
                    commit(bootstrap, args[2], args[3], Integer.parseInt(args[4]), Long.parseLong(args[5]));
                    break;
                default:
                    usage("unknown command " + cmd);
            }
        } catch (Exception e) {
            System.err.println("KoTool " + cmd + " failed: " + e);
            e.printStackTrace(System.err);
            System.exit(1);
        }
        System.exit(0);
    }

    private static void need(String[] args, int n) {
        if (args.length != n) {
            usage("wrong number of arguments for " + args[1]);
        }
    }

    private static void usage(String why) {
        System.err.println("KoTool: " + why);
        System.err.println("usage: KoTool BOOTSTRAP produce TOPIC PARTITION COUNT");
        System.err.println("       KoTool BOOTSTRAP produce-txn TOPIC PARTITION COUNT commit|abort");
        System.err.println("       KoTool BOOTSTRAP txn-hold TOPIC PARTITION COUNT   (then 'commit' on stdin)");
        System.err.println("       KoTool BOOTSTRAP commit GROUP TOPIC PARTITION OFFSET");
        System.exit(2);
    }

    /** txnCommit == null: plain idempotent producer; otherwise one transaction, committed or aborted. */
    private static void produce(String bootstrap, String topic, int partition, int count, Boolean txnCommit,
            Long timestamp) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("acks", "all");
        p.put("enable.idempotence", "true");
        p.put("linger.ms", "0");
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        if (txnCommit != null) {
            p.put("transactional.id", "kotool-" + topic + "-" + partition + "-" + System.nanoTime());
        }
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            if (txnCommit != null) {
                producer.initTransactions();
                producer.beginTransaction();
            }
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                sent.add(producer.send(new ProducerRecord<>(topic, partition, timestamp, "key-" + i, "value-" + i)));
            }
            producer.flush();
            long first = -1;
            long last = -1;
            for (Future<RecordMetadata> f : sent) {
                RecordMetadata md = f.get();
                if (md.partition() != partition) {
                    throw new IllegalStateException("record landed in partition " + md.partition());
                }
                if (first < 0) {
                    first = md.offset();
                }
                last = md.offset();
            }
            if (txnCommit != null) {
                if (txnCommit) {
                    producer.commitTransaction();
                } else {
                    producer.abortTransaction();
                }
            }
            System.out.println("offsets " + first + " " + last);
        }
    }

    private static void deleteRecords(String bootstrap, String topic, int partition, long offset) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        TopicPartition tp = new TopicPartition(topic, partition);
        try (org.apache.kafka.clients.admin.Admin admin = org.apache.kafka.clients.admin.Admin.create(p)) {
            long low = admin.deleteRecords(Map.of(tp, org.apache.kafka.clients.admin.RecordsToDelete.beforeOffset(offset)))
                    .lowWatermarks().get(tp).get().lowWatermark();
            System.out.println("log-start " + low);
        }
    }

    /**
     * A transaction held open until the caller says so on stdin: its records are in the log (the
     * high watermark moved) while the last stable offset stays before them.
     */
    private static void txnHold(String bootstrap, String topic, int partition, int count) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("acks", "all");
        p.put("enable.idempotence", "true");
        p.put("linger.ms", "0");
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("transactional.id", "kotool-hold-" + topic + "-" + partition + "-" + System.nanoTime());
        p.put("transaction.timeout.ms", "300000");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            producer.initTransactions();
            producer.beginTransaction();
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                sent.add(producer.send(new ProducerRecord<>(topic, partition, "key-" + i, "value-" + i)));
            }
            producer.flush();
            long first = -1;
            long last = -1;
            for (Future<RecordMetadata> f : sent) {
                RecordMetadata md = f.get();
                if (md.partition() != partition) {
                    throw new IllegalStateException("record landed in partition " + md.partition());
                }
                if (first < 0) {
                    first = md.offset();
                }
                last = md.offset();
            }
            System.out.println("offsets " + first + " " + last);
            System.out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            String line = in.readLine();
            if (line != null && line.trim().equals("commit")) {
                producer.commitTransaction();
                System.out.println("committed");
            } else {
                producer.abortTransaction();
                System.out.println("aborted");
            }
            System.out.flush();
        }
    }

    /** Records to several partitions in one go: they land within milliseconds of each other. */
    private static void produceSpread(String bootstrap, String topic, String spec) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("acks", "all");
        p.put("enable.idempotence", "true");
        p.put("linger.ms", "0");
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            producer.partitionsFor(topic);
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (String part : spec.split(",")) {
                String[] pn = part.split(":");
                int partition = Integer.parseInt(pn[0]);
                int count = Integer.parseInt(pn[1]);
                for (int i = 0; i < count; i++) {
                    sent.add(producer.send(new ProducerRecord<>(topic, partition, "key-" + i, "value-" + i)));
                }
            }
            producer.flush();
            for (Future<RecordMetadata> f : sent) {
                f.get();
            }
            System.out.println("offsets -1 -1");
        }
    }

    private static void produceKeys(String bootstrap, String topic, String[] keys) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("acks", "all");
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (String key : keys) {
                sent.add(producer.send(new ProducerRecord<>(topic, key, "java-" + key)));
            }
            producer.flush();
            for (int i = 0; i < keys.length; i++) {
                System.out.println("key " + keys[i] + " " + sent.get(i).get().partition());
            }
        }
    }

    private static void commit(String bootstrap, String group, String topic, int partition, long offset) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("group.id", group);
        p.put("enable.auto.commit", "false");
        p.put("key.deserializer", StringDeserializer.class.getName());
        p.put("value.deserializer", StringDeserializer.class.getName());
        TopicPartition tp = new TopicPartition(topic, partition);
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
            consumer.assign(List.of(tp));
            consumer.commitSync(Map.of(tp, new OffsetAndMetadata(offset)));
        }
        System.out.println("committed " + offset);
    }
}
