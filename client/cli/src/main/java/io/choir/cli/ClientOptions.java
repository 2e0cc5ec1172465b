package io.choir.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.choir.client.BusyException;
import io.choir.client.CasFailedException;
import io.choir.client.ChoirClient;
import io.choir.client.ChoirException;
import io.choir.client.ChoirTimeoutException;
import io.choir.client.InvalidRequestException;
import io.choir.client.LeaseNotFoundException;
import io.choir.client.PermissionDeniedException;
import io.choir.client.SessionExpiredException;
import io.choir.client.TlsException;
import io.choir.client.TooLargeException;
import io.choir.client.UnavailableException;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * ClientOptions are the options every client command shares: where the cluster is, timeout, output,
 * and TLS and token ({@link SecurityOptions}).
 */
final class ClientOptions {
  /** Longest the check that some endpoint accepts a connection waits (see {@link Reachability}). */
  static final long PROBE_BUDGET_MS = 1_000;

  @Option(names = {"-e", "--endpoints"}, paramLabel = "HOST:PORT,...",
      description = "Replica client addresses (default: $CHOIR_ENDPOINTS or 127.0.0.1:7301).")
  String endpoints;

  @Option(names = "--timeout-ms", paramLabel = "MS", defaultValue = "5000",
      description = "Time budget of the command, retries included. Default: ${DEFAULT-VALUE}")
  long timeoutMs;

  @Option(names = "--json", description = "Print one JSON object (for scripts).")
  boolean json;

  @Mixin SecurityOptions security = new SecurityOptions();

  List<String> endpointList() {
    String e = endpoints;
    if (e == null || e.isBlank()) {
      e = System.getenv().getOrDefault("CHOIR_ENDPOINTS", "127.0.0.1:7301");
    }
    return Arrays.stream(e.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
  }

  /**
   * The client of one command. Every command closes it (try-with-resources in KvCommands.Base), and
   * close() ends the session a write opened (CloseSession), so a CLI call leaves no session behind to
   * take a row of the replicas' session table; reads open none.
   */
  ChoirClient connect() {
    return security.apply(ChoirClient.builder()
        .endpoints(endpointList())
        .requestTimeout(Duration.ofMillis(timeoutMs))
        .eventLoopThreads(1)) // one request at a time: a second I/O thread would only cost start-up time
        .build();
  }

  /** How long {@link Reachability} may wait for a connection: a second, or the command's budget if shorter. */
  long probeBudgetMs() {
    return Math.max(1, Math.min(PROBE_BUDGET_MS, timeoutMs));
  }

  /** Jackson's mapper, made on first use: a command without --json never pays for it. */
  static ObjectMapper json() {
    return Json.MAPPER;
  }

  /** Holder of the mapper (the JVM initialises it on first access to json()). */
  private static final class Json {
    static final ObjectMapper MAPPER = new ObjectMapper().enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS);
  }

  /**
   * Reports that no endpoint accepts a connection (what {@link Reachability} found), in one line, and
   * returns exit code 3: the command was not sent anywhere.
   */
  int noReplica(PrintWriter out, PrintWriter err, String why) {
    String message = "no replica answers at " + why;
    if (json) {
      printJson(out, Map.of("ok", false, "error", "unavailable", "message", message));
    } else {
      err.println("choir: " + message);
    }
    return Choir.EXIT_UNAVAILABLE;
  }

  void printJson(PrintWriter out, Object value) {
    try {
      out.println(json().writeValueAsString(value));
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Prints the error (as JSON with --json) and returns the command's exit code for it. */
  int fail(PrintWriter out, PrintWriter err, ChoirException e) {
    int code;
    String kind;
    if (e instanceof CasFailedException) {
      code = Choir.EXIT_NOT_FOUND;
      kind = "cas_failed";
    } else if (e instanceof LeaseNotFoundException) {
      code = Choir.EXIT_NOT_FOUND;
      kind = "lease_not_found";
    } else if (e instanceof UnavailableException) {
      code = Choir.EXIT_UNAVAILABLE;
      kind = "unavailable";
    } else if (e instanceof SessionExpiredException) {
      code = Choir.EXIT_UNAVAILABLE; // outcome unknown, like a timeout, but for its own reason
      kind = "session_expired";
    } else if (e instanceof ChoirTimeoutException) {
      code = Choir.EXIT_UNAVAILABLE;
      kind = "timeout";
    } else if (e instanceof BusyException) {
      code = Choir.EXIT_UNAVAILABLE;
      kind = "busy";
    } else if (e instanceof TooLargeException) {
      code = Choir.EXIT_USAGE;
      kind = "too_large";
    } else if (e instanceof PermissionDeniedException) {
      code = Choir.EXIT_DENIED;
      kind = "permission_denied";
    } else if (e instanceof TlsException) {
      code = Choir.EXIT_DENIED;
      kind = "tls";
    } else if (e instanceof InvalidRequestException) {
      code = Choir.EXIT_USAGE;
      kind = "invalid";
    } else {
      code = Choir.EXIT_ERROR;
      kind = "error";
    }
    if (json) {
      printJson(out, Map.of("ok", false, "error", kind, "message", String.valueOf(e.getMessage())));
    } else {
      err.println("choir: " + kind.replace('_', ' ') + ": " + e.getMessage());
    }
    return code;
  }
}
