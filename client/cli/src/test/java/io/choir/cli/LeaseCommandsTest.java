package io.choir.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.choir.proto.LeaseInfo;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import picocli.CommandLine;

/**
 * `choir lease grant|keepalive|revoke|list` and `choir put --lease` against a scripted replica that
 * keeps a lease table: the requests sent, the output (plain and --json) and the exit codes: 1 for a
 * lease that does not exist, 2 for a TTL of 0 or above a day (refused before anything is sent).
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class LeaseCommandsTest {
  record Run(int code, String out, String err) {
    JsonNode json() throws Exception {
      return ClientOptions.json().readTree(out);
    }
  }

  private static Run run(ScriptedReplica replica, String... args) {
    CommandLine cl = Choir.commandLine(args);
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    cl.setOut(new PrintWriter(out, true));
    cl.setErr(new PrintWriter(err, true));
    List<String> all = new ArrayList<>(List.of(args));
    all.add("--endpoints=" + replica.address());
    all.add("--timeout-ms=3000");
    int code = cl.execute(all.toArray(String[]::new));
    return new Run(code, out.toString(), err.toString());
  }

  /** A replica with a lease table: ids from 10, time standing at 1000 ms. */
  private static Function<Request, Response> leases() {
    Map<Long, LeaseInfo> table = new TreeMap<>();
    return r -> {
      Response.Builder b = Response.newBuilder().setRequestId(r.getRequestId()).setStatus(Status.OK).setOp(50);
      switch (r.getOpCase()) {
        case LEASE_GRANT -> {
          long id = 10 + table.size();
          LeaseInfo info = LeaseInfo.newBuilder().setId(id).setTtlMs(r.getLeaseGrant().getTtlMs())
              .setNowMs(1_000).setDeadlineMs(1_000 + r.getLeaseGrant().getTtlMs()).build();
          table.put(id, info);
          return b.setLease(info).build();
        }
        case LEASE_KEEP_ALIVE -> {
          LeaseInfo info = table.get(r.getLeaseKeepAlive().getId());
          return info == null ? b.setStatus(Status.NOT_FOUND).setError("lease not found").build() : b.setLease(info).build();
        }
        case LEASE_REVOKE -> {
          return table.remove(r.getLeaseRevoke().getId()) == null
              ? b.setStatus(Status.NOT_FOUND).setError("lease not found").build() : b.setVersion(51).build();
        }
        case LEASE_LIST -> {
          table.values().stream().filter(l -> l.getId() >= r.getLeaseList().getStartId()).forEach(b::addLeases);
          return b.build();
        }
        case PUT -> {
          LeaseInfo info = table.get(r.getPut().getLease());
          return info == null ? b.setStatus(Status.NOT_FOUND).setError("lease not found").build()
              : b.setVersion(52).build();
        }
        default -> {
          return b.setStatus(Status.INVALID).build();
        }
      }
    };
  }

  @Test
  void grantKeepAliveRevokeAndList() throws Exception {
    try (ScriptedReplica replica = new ScriptedReplica(leases())) {
      Run grant = run(replica, "lease", "grant", "10s");
      assertEquals(Choir.EXIT_OK, grant.code(), grant.err());
      assertEquals("10", grant.out().trim());
      assertEquals(10_000, replica.received().get(0).getLeaseGrant().getTtlMs());

      Run json = run(replica, "lease", "grant", "2500", "--json");
      assertEquals(11, json.json().get("id").asLong());
      assertEquals(2_500, json.json().get("remaining_ms").asLong());

      Run kept = run(replica, "lease", "keepalive", "10");
      assertEquals(Choir.EXIT_OK, kept.code(), kept.err());
      assertTrue(kept.out().startsWith("10\tttl 10000 ms\tremaining 10000 ms"), kept.out());

      Run put = run(replica, "put", "svc/a", "addr", "--lease", "10");
      assertEquals(Choir.EXIT_OK, put.code(), put.err());
      assertEquals("52", put.out().trim());

      Run list = run(replica, "lease", "list", "--json");
      assertEquals(Choir.EXIT_OK, list.code(), list.err());
      assertEquals(2, list.json().get("leases").size());
      assertEquals(10_000, list.json().get("leases").get(0).get("ttl_ms").asLong());

      assertEquals(Choir.EXIT_OK, run(replica, "lease", "revoke", "10").code());
      Run again = run(replica, "lease", "revoke", "10");
      assertEquals(Choir.EXIT_NOT_FOUND, again.code());
      assertTrue(again.err().contains("lease 10 not found"), again.err());
      Run gone = run(replica, "lease", "keepalive", "10", "--json");
      assertEquals(Choir.EXIT_NOT_FOUND, gone.code());
      assertEquals("lease_not_found", gone.json().get("error").asText());
      Run orphan = run(replica, "put", "svc/b", "addr", "--lease", "10");
      assertEquals(Choir.EXIT_NOT_FOUND, orphan.code());
    }
  }

  @Test
  void aTtlOfZeroOrAboveADayIsAUsageError() throws Exception {
    try (ScriptedReplica replica = new ScriptedReplica(leases())) {
      for (String ttl : List.of("0", "-5", "25h", "86400001", "soon")) {
        Run run = run(replica, "lease", "grant", ttl);
        assertEquals(Choir.EXIT_USAGE, run.code(), ttl + ": " + run.err());
      }
      assertTrue(replica.received().isEmpty(), "nothing sent for a bad TTL");
    }
    assertEquals(Duration.ofMinutes(5), LeaseCommands.ttl("5m"));
    assertEquals(Duration.ofDays(1), LeaseCommands.ttl("24h"));
    assertThrows(IllegalArgumentException.class, () -> LeaseCommands.ttl("1.5s"));
  }
}
