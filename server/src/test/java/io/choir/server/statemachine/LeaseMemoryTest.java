package io.choir.server.statemachine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.Entry;
import io.choir.proto.LeaseGrant;
import io.choir.proto.Put;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.storage.RocksDbStorage;
import io.choir.server.storage.Storage;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LeaseMemoryTest measures the heap the lease table costs: {@link LeaseCommands#MAX_LEASES} leases
 * (over RocksDB, whose rows are off the heap), each with one key, heap after GC before and after; and
 * shows that the table refuses one lease more. The figure is in docs/lease.md.
 */
class LeaseMemoryTest {
  @TempDir Path dir;

  private static long usedAfterGc(MemoryMXBean memory) {
    long used = Long.MAX_VALUE;
    for (int i = 0; i < 3; i++) {
      System.gc();
      used = Math.min(used, memory.getHeapMemoryUsage().getUsed());
    }
    return used;
  }

  @Test
  void measuresTheHeapPerLeaseAndRefusesOneMoreThanTheMaximum() {
    MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
    try (Storage storage = RocksDbStorage.open(dir.resolve("db"))) {
      KvStateMachine sm = new KvStateMachine(storage, 16, 4);
      sm.load();
      long op = 0;
      long before = usedAfterGc(memory);
      int leases = LeaseCommands.MAX_LEASES;
      for (int start = 0; start < leases; start += 1000) {
        List<Entry> entries = new ArrayList<>();
        for (int i = 0; i < 1000; i++) {
          long id = ++op;
          entries.add(Entry.newBuilder().setOp(id).setTimeMs(1)
              .setLeaseGrant(LeaseGrant.newBuilder().setTtlMs(60_000)).build());
          entries.add(Entry.newBuilder().setOp(++op).setTimeMs(1).setPut(Put.newBuilder()
              .setKey(ByteString.copyFromUtf8("service/" + id)).setValue(ByteString.copyFromUtf8("x"))
              .setLease(id)).build());
        }
        sm.apply(entries, false);
      }
      long after = usedAfterGc(memory);
      assertEquals(leases, sm.leaseCount());
      assertEquals(leases, sm.leaseKeyCount());
      long perLease = (after - before) / leases;
      System.out.println("lease table: " + leases + " leases with one key each: heap after GC " + before / 1024
          + " KiB before, " + after / 1024 + " KiB after: " + perLease + " bytes per lease (with its key)");
      assertTrue(perLease < 2_000, perLease + " bytes per lease");
      Response full = sm.apply(List.of(Entry.newBuilder().setOp(++op).setTimeMs(2)
          .setLeaseGrant(LeaseGrant.newBuilder().setTtlMs(60_000)).build()), false).get(0);
      assertEquals(Status.BUSY, full.getStatus());
      assertTrue(full.getError().contains("lease table is full"), full.getError());
    }
  }
}
