package io.choir.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.google.protobuf.ByteString;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.proto.Watch;
import io.choir.proto.WatchEvent;
import io.choir.proto.WatchEvents;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import picocli.CommandLine;

/** choir watch against a scripted replica: the request it sends, its lines, --json, and compacted. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class WatchCommandTest {
  record Run(int code, String out, String err) {}

  private static Run run(ScriptedReplica replica, String... args) {
    CommandLine cl = Choir.commandLine();
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    cl.setOut(new PrintWriter(out, true));
    cl.setErr(new PrintWriter(err, true));
    List<String> all = new ArrayList<>(List.of(args));
    all.add("--endpoints=" + replica.address());
    int code = cl.execute(all.toArray(String[]::new));
    return new Run(code, out.toString(), err.toString());
  }

  private static Response events(Request r) {
    WatchEvents.Builder e = WatchEvents.newBuilder().setStartRevision(r.getWatch().getStartRevision())
        .addEvents(WatchEvent.newBuilder().setRevision(5).setKind(WatchEvent.Kind.PUT).setKey(utf8("app/a"))
            .setValue(utf8("one")).setHasPrev(true).setPrevValue(utf8("zero")).setPrevVersion(3))
        .addEvents(WatchEvent.newBuilder().setRevision(7).setKind(WatchEvent.Kind.DELETE).setKey(utf8("app/b"))
            .setHasPrev(true).setPrevValue(utf8("old")).setPrevVersion(4));
    return Response.newBuilder().setRequestId(r.getRequestId()).setStatus(Status.OK).setWatchEvents(e).build();
  }

  private static ByteString utf8(String s) {
    return ByteString.copyFromUtf8(s);
  }

  @Test
  void shouldPrintOneLinePerChangeAndSendTheWatchAsked() throws Exception {
    try (ScriptedReplica replica = new ScriptedReplica(WatchCommandTest::events)) {
      Run run = run(replica, "watch", "--prefix", "app/", "--from", "5", "--prev", "--max-events", "2");

      assertEquals(0, run.code(), run.err());
      assertEquals("5\tput\tapp/a\tone\tprev=zero\n7\tdelete\tapp/b\tprev=old\n", run.out().replace("\r\n", "\n"));
      Watch sent = replica.received().get(0).getWatch();
      assertEquals("app/", sent.getKey().toStringUtf8());
      assertTrue(sent.getPrefix());
      assertEquals(5, sent.getStartRevision());
      assertTrue(sent.getPrevValue());
    }
  }

  @Test
  void shouldPrintOneJsonObjectPerLine() throws Exception {
    try (ScriptedReplica replica = new ScriptedReplica(WatchCommandTest::events)) {
      Run run = run(replica, "watch", "app/a", "--json", "--max-events", "2");

      assertEquals(0, run.code(), run.err());
      String[] lines = run.out().split("\\R");
      assertEquals(2, lines.length, run.out());
      JsonNode first = ClientOptions.json().readTree(lines[0]);
      assertEquals(5, first.get("revision").asLong());
      assertEquals("put", first.get("kind").asText());
      assertEquals("app/a", first.get("key").asText());
      assertEquals("one", first.get("value").asText());
      assertEquals("delete", ClientOptions.json().readTree(lines[1]).get("kind").asText());
      assertTrue(!replica.received().get(0).getWatch().getPrefix());
    }
  }

  @Test
  void shouldExitOneNamingTheOldestRevisionWhenTheStartIsCompacted() throws Exception {
    try (ScriptedReplica replica = new ScriptedReplica(r -> Response.newBuilder().setRequestId(r.getRequestId())
        .setStatus(Status.INVALID).setError("revision 2 is compacted: the oldest revision this replica keeps is 40")
        .setWatchEvents(WatchEvents.newBuilder().setCompacted(true).setOldestRevision(40)).build())) {
      Run run = run(replica, "watch", "k", "--from", "2");

      assertEquals(1, run.code());
      assertTrue(run.err().startsWith("choir: compacted: revision 2 is compacted"), run.err());
      assertTrue(run.err().contains("watch from 40 or later"), run.err());
    }
  }

  @Test
  void shouldRefuseBothKeyAndPrefixOrNeither() throws Exception {
    try (ScriptedReplica replica = new ScriptedReplica(WatchCommandTest::events)) {
      assertEquals(Choir.EXIT_USAGE, run(replica, "watch").code());
      assertEquals(Choir.EXIT_USAGE, run(replica, "watch", "k", "--prefix", "p").code());
    }
  }
}
