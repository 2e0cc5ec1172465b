package io.choir.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.google.protobuf.ByteString;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import picocli.CommandLine;

/**
 * A client command with no replica to talk to (issue 13 item 5): when every endpoint refuses the
 * connection, it says so in one line and exits 3 at once, instead of retrying until --timeout-ms runs
 * out; as JSON with --json. One endpoint that accepts is enough for the command to run.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class NoReplicaTest {
  /** Far above what the check takes: a command that waited for its timeout fails the time bound. */
  private static final String TIMEOUT = "--timeout-ms=10000";
  /** How long "at once" may take on a loaded machine (the JVM is already warm here). */
  private static final long AT_ONCE_MS = 3_000;

  record Run(int code, String out, String err, long elapsedMs) {}

  private static Run run(String... args) {
    CommandLine cl = Choir.commandLine(args);
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    cl.setOut(new PrintWriter(out, true));
    cl.setErr(new PrintWriter(err, true));
    long start = System.nanoTime();
    int code = cl.execute(args);
    return new Run(code, out.toString(), err.toString(), TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
  }

  /** A loopback port nothing listens on (the OS just gave it out and it was closed again). */
  private static int refusingPort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  @Test
  void getWithNothingListeningSaysSoInOneLineAtOnce() throws Exception {
    int port = refusingPort();
    Run r = run("get", "k", "--endpoints=127.0.0.1:" + port, TIMEOUT);
    assertEquals(Choir.EXIT_UNAVAILABLE, r.code(), r.err());
    assertEquals("choir: no replica answers at 127.0.0.1:" + port + " (connection refused)" + System.lineSeparator(),
        r.err());
    assertEquals("", r.out());
    assertTrue(r.elapsedMs() < AT_ONCE_MS, "took " + r.elapsedMs() + " ms");
  }

  @Test
  void everyEndpointIsNamedAndEveryCommandChecks() throws Exception {
    int a = refusingPort();
    int b = refusingPort();
    String endpoints = "--endpoints=127.0.0.1:" + a + ",127.0.0.1:" + b;
    for (String[] command : new String[][] {{"put", "k", "v"}, {"status"}, {"member", "list"}, {"scan", "a", "z"}}) {
      String[] args = new String[command.length + 2];
      System.arraycopy(command, 0, args, 0, command.length);
      args[command.length] = endpoints;
      args[command.length + 1] = TIMEOUT;
      Run r = run(args);
      assertEquals(Choir.EXIT_UNAVAILABLE, r.code(), String.join(" ", command) + ": " + r.err());
      assertEquals("choir: no replica answers at 127.0.0.1:" + a + ", 127.0.0.1:" + b + " (connection refused)"
          + System.lineSeparator(), r.err(), String.join(" ", command));
      assertTrue(r.elapsedMs() < AT_ONCE_MS, String.join(" ", command) + " took " + r.elapsedMs() + " ms");
    }
  }

  @Test
  void jsonSaysUnavailable() throws Exception {
    int port = refusingPort();
    Run r = run("get", "k", "--json", "--endpoints=127.0.0.1:" + port, TIMEOUT);
    assertEquals(Choir.EXIT_UNAVAILABLE, r.code());
    JsonNode j = ClientOptions.json().readTree(r.out());
    assertEquals(false, j.get("ok").asBoolean());
    assertEquals("unavailable", j.get("error").asText());
    assertEquals("no replica answers at 127.0.0.1:" + port + " (connection refused)", j.get("message").asText());
  }

  @Test
  void oneEndpointThatAcceptsIsEnough() throws Exception {
    int refusing = refusingPort();
    try (ScriptedReplica replica = new ScriptedReplica(req -> Response.newBuilder().setRequestId(req.getRequestId())
        .setStatus(Status.OK).setValue(ByteString.copyFromUtf8("v")).setVersion(3).build())) {
      Run r = run("get", "k", "--endpoints=127.0.0.1:" + refusing + "," + replica.address(), TIMEOUT);
      assertEquals(Choir.EXIT_OK, r.code(), r.err());
      assertEquals("v" + System.lineSeparator(), r.out());
    }
  }

  @Test
  void aMalformedEndpointIsAUsageError() {
    Run r = run("get", "k", "--endpoints=not-an-endpoint", TIMEOUT);
    assertEquals(Choir.EXIT_USAGE, r.code(), r.err());
    assertTrue(r.err().contains("host:port"), r.err());
  }
}
