import org.apache.kafka.common.record.*;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.util.HexFormat;

public class GenJavaVectors {
  static byte[] b(String s) { return s == null ? null : s.getBytes(StandardCharsets.UTF_8); }
  static String hex(ByteBuffer buf) {
    byte[] out = new byte[buf.remaining()];
    buf.duplicate().get(out);
    return HexFormat.of().formatHex(out);
  }
  static MemoryRecordsBuilder builder(CompressionType t, long base) {
    return MemoryRecords.builder(ByteBuffer.allocate(1 << 20), RecordBatch.CURRENT_MAGIC_VALUE,
        Compression.of(t).build(), TimestampType.CREATE_TIME, base, RecordBatch.NO_TIMESTAMP,
        4242L, (short) 3, 17, false, -1);
  }
  public static void main(String[] args) throws Exception {
    if (args[0].equals("gen")) {
      for (CompressionType t : CompressionType.values()) {
        MemoryRecordsBuilder bld = builder(t, 100);
        bld.append(1700000000000L, b("key-0"), b("value-0"),
            new Header[] { new RecordHeader("h1", b("v1")), new RecordHeader("h2", (byte[]) null) });
        bld.append(1700000000005L, null, b("value-1 value-1 value-1"), new Header[0]);
        bld.append(1699999999990L, b("k2"), null, new Header[] { new RecordHeader("é", b("")) });
        System.out.println("small_" + t.name + " " + hex(bld.build().buffer()));
        if (t != CompressionType.NONE) {
          byte[] big = new byte[200_000];
          for (int i = 0; i < big.length; i++) big[i] = (byte) ((i * 7 + i / 1000) % 251);
          MemoryRecordsBuilder b2 = builder(t, 0);
          b2.append(1700000000000L, b("big"), big, new Header[0]);
          b2.append(1700000000001L, b("small"), b("x"), new Header[0]);
          System.out.println("big_" + t.name + " " + hex(b2.build().buffer()));
        }
      }
      MemoryRecords commit = MemoryRecords.withEndTransactionMarker(500L, 1700000000000L, 7, 4242L, (short) 3,
          new EndTransactionMarker(ControlRecordType.COMMIT, 11));
      System.out.println("control_commit " + hex(commit.buffer()));
      MemoryRecords abort = MemoryRecords.withEndTransactionMarker(501L, 1700000000001L, 7, 4242L, (short) 3,
          new EndTransactionMarker(ControlRecordType.ABORT, 12));
      System.out.println("control_abort " + hex(abort.buffer()));
    } else {
      // read: verify each file's batches and print their records
      for (int i = 1; i < args.length; i++) {
        ByteBuffer buf = ByteBuffer.wrap(Files.readAllBytes(Path.of(args[i])));
        MemoryRecords recs = MemoryRecords.readableRecords(buf);
        for (MutableRecordBatch batch : recs.batches()) {
          batch.ensureValid();
          System.out.println(args[i] + " batch base=" + batch.baseOffset() + " last=" + batch.lastOffset()
              + " codec=" + batch.compressionType() + " pid=" + batch.producerId() + " epoch=" + batch.producerEpoch()
              + " seq=" + batch.baseSequence() + " txn=" + batch.isTransactional() + " ctl=" + batch.isControlBatch()
              + " max_ts=" + batch.maxTimestamp() + " count=" + batch.countOrNull());
          for (org.apache.kafka.common.record.Record r : batch) {
            r.ensureValid();
            StringBuilder sb = new StringBuilder();
            sb.append("  off=").append(r.offset()).append(" ts=").append(r.timestamp());
            sb.append(" key=").append(r.hasKey() ? "len" + r.keySize() + ":" + StandardCharsets.UTF_8.decode(r.key()) : "null");
            sb.append(" value=").append(r.hasValue() ? "len" + r.valueSize() + ":" + (r.valueSize() < 64 ? StandardCharsets.UTF_8.decode(r.value()).toString() : "...") : "null");
            for (Header h : r.headers()) sb.append(" h[").append(h.key()).append("=").append(h.value() == null ? "null" : new String(h.value(), StandardCharsets.UTF_8)).append("]");
            System.out.println(sb);
          }
        }
      }
    }
  }
}
