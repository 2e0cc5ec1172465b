package io.choir.checker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.client.BusyException;
import io.choir.client.CasFailedException;
import io.choir.client.ChoirException;
import io.choir.client.ChoirTimeoutException;
import io.choir.client.InvalidRequestException;
import io.choir.client.TooLargeException;
import io.choir.client.UnavailableException;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.jar.JarFile;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * ClientOutcomesTest pins the rule a history is recorded by: only an exception the client documents as
 * "not executed" (or a definite CAS_FAILED) is a fail; every other one, known or not, is info.
 */
class ClientOutcomesTest {

  /**
   * REVIEWED_UNKNOWN are the client's exceptions whose documentation was read and promises nothing about
   * execution (or says the outcome is unknown), by simple name, so that one not yet on the classpath can
   * be listed: SessionExpiredException ("the session expired; the outcome of the request is unknown").
   */
  private static final Set<String> REVIEWED_UNKNOWN =
      Set.of("ChoirException", "ChoirTimeoutException", "SessionExpiredException",
          // "the learner was added, but not promoted": part of the change was executed, so never a fail
          "LearnerNotCaughtUpException",
          // "the watch's start revision is no longer kept": ends a watch, a read; it says nothing of a write
          "WatchCompactedException");

  /** A stand-in for an exception type the client adds later: never a fail by default. */
  private static final class BrandNewClientException extends ChoirException {
    BrandNewClientException() {
      super("a kind of error no one has classified yet");
    }
  }

  @Test
  void shouldRecordOnlyTheExceptionsThatPromiseNoExecutionAsFail() {
    assertEquals(Outcome.FAIL, ClientOutcomes.outcome(new UnavailableException("no quorum")));
    assertEquals(Outcome.FAIL, ClientOutcomes.outcome(new BusyException("busy")));
    assertEquals(Outcome.FAIL, ClientOutcomes.outcome(new TooLargeException("value too large")));
    assertEquals(Outcome.FAIL, ClientOutcomes.outcome(new InvalidRequestException("empty batch")));
    assertEquals(Outcome.FAIL, ClientOutcomes.outcome(new CasFailedException("cas", null, 0, -1)));
  }

  @Test
  void shouldRecordEveryOtherExceptionAsInfo() {
    assertEquals(Outcome.INFO, ClientOutcomes.outcome(new ChoirTimeoutException("no answer")));
    assertEquals(Outcome.INFO, ClientOutcomes.outcome(new ChoirException("unexpected status 99")));
    assertEquals(Outcome.INFO, ClientOutcomes.outcome(new BrandNewClientException()),
        "a new client exception is unknown until someone classifies it");
    assertEquals(Outcome.INFO, ClientOutcomes.outcome(new IllegalStateException("harness bug")));
    assertEquals(Outcome.INFO, ClientOutcomes.outcome(new RuntimeException(new UnavailableException("cause"))),
        "only the exception itself promises, not a cause under an arbitrary wrapper");
    assertFalse(ClientOutcomes.notExecuted(new ChoirTimeoutException("no answer")));
  }

  @Test
  void shouldJudgeTheAsynchronousWrappersByTheirCause() {
    assertEquals(Outcome.FAIL, ClientOutcomes.outcome(new CompletionException(new UnavailableException("x"))));
    assertEquals(Outcome.FAIL, ClientOutcomes.outcome(new ExecutionException(new BusyException("x"))));
    assertEquals(Outcome.INFO, ClientOutcomes.outcome(new CompletionException(new ChoirTimeoutException("x"))));
    assertEquals(Outcome.INFO, ClientOutcomes.outcome(new CompletionException("no cause", null)));
    assertTrue(ClientOutcomes.notExecuted(new CompletionException(new CasFailedException("c", null, 0, -1))));
  }

  @Test
  void shouldSayThePromiseAndTheErrorInTheRecordedText() {
    assertEquals("not executed: unavailable (UnavailableException: no quorum)",
        ClientOutcomes.describe(new UnavailableException("no quorum")));
    assertEquals("outcome unknown (ChoirTimeoutException: no answer)",
        ClientOutcomes.describe(new ChoirTimeoutException("no answer")));
    assertEquals("outcome unknown (BrandNewClientException: a kind of error no one has classified yet)",
        ClientOutcomes.describe(new CompletionException(new BrandNewClientException())));
  }

  /**
   * Every exception class the client library ships is either on the allow-list or was reviewed as
   * unknown: a new one makes this test fail until its documentation is read and it is put in one of the
   * two (recording it as info meanwhile is safe, but may be weaker than its promise allows).
   */
  @Test
  void shouldHaveClassifiedEveryExceptionOfTheClientLibrary() throws Exception {
    Set<String> shipped = clientExceptionNames();
    assertTrue(shipped.contains("UnavailableException") && shipped.contains("ChoirTimeoutException"),
        "found the client's classes: " + shipped);
    Set<String> allowed = new TreeSet<>();
    ClientOutcomes.NOT_EXECUTED.keySet().forEach(c -> allowed.add(c.getSimpleName()));
    List<String> unclassified = new ArrayList<>();
    for (String name : shipped) {
      if (!allowed.contains(name) && !REVIEWED_UNKNOWN.contains(name)) {
        unclassified.add(name);
      }
    }
    assertEquals(List.of(), unclassified, "read their Javadoc: a documented \"not executed\" goes in "
        + "ClientOutcomes.NOT_EXECUTED, anything else in REVIEWED_UNKNOWN here");
  }

  /** clientExceptionNames are the simple names of the top-level *Exception classes of io.choir.client. */
  private static Set<String> clientExceptionNames() throws IOException, URISyntaxException {
    Path where = Path.of(ChoirException.class.getProtectionDomain().getCodeSource().getLocation().toURI());
    Set<String> names = new TreeSet<>();
    if (Files.isDirectory(where)) {
      try (Stream<Path> files = Files.list(where.resolve("io/choir/client"))) {
        files.map(p -> p.getFileName().toString()).forEach(n -> addIfException(n, names));
      }
    } else {
      try (JarFile jar = new JarFile(where.toFile())) {
        jar.stream().map(e -> e.getName()).filter(n -> n.startsWith("io/choir/client/") && n.indexOf('/', 16) < 0)
            .forEach(n -> addIfException(n.substring("io/choir/client/".length()), names));
      }
    }
    return names;
  }

  private static void addIfException(String fileName, Set<String> names) {
    if (fileName.endsWith("Exception.class") && !fileName.contains("$")) {
      names.add(fileName.substring(0, fileName.length() - ".class".length()));
    }
  }
}
