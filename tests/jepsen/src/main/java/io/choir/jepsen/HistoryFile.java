package io.choir.jepsen;

import com.fasterxml.jackson.databind.JsonNode;
import io.choir.checker.History;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.Reader;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * HistoryFile reads a run's history.jsonl back: the op lines (the checker's JSON-lines format, see
 * io.choir.checker.JsonLines) become a {@link History}, the nemesis lines a list of
 * {@link NemesisEvent}s, the set workload's final reads ({@code "f":"scan"}) a list of {@link SetRead}s.
 * So a history can be re-checked or re-plotted after the run:
 * {@code HistoryFile.read(dir.resolve("history.jsonl"))}.
 *
 * <p>With jq, {@code jq -c 'select(.type != "nemesis" and .f != "scan")' history.jsonl} is the checker's
 * input.
 *
 * @param history the client operations
 * @param nemesis the nemesis events in order
 * @param setReads the set workload's final reads in invocation order (empty for the register workload)
 */
public record HistoryFile(History history, List<NemesisEvent> nemesis, List<SetRead> setReads) {
  /** HistoryFile copies the lists. */
  public HistoryFile {
    nemesis = List.copyOf(nemesis);
    setReads = List.copyOf(setReads);
  }

  /** HistoryFile of a history without set reads. */
  public HistoryFile(History history, List<NemesisEvent> nemesis) {
    this(history, nemesis, List.of());
  }

  /** read parses a history file (UTF-8). */
  public static HistoryFile read(Path file) throws IOException {
    try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
      return read(r);
    }
  }

  /** read parses history lines from {@code in}. */
  public static HistoryFile read(Reader in) throws IOException {
    BufferedReader r = new BufferedReader(in);
    StringBuilder ops = new StringBuilder();
    List<NemesisEvent> nemesis = new ArrayList<>();
    SetRead.Lines setReads = new SetRead.Lines();
    String line;
    while ((line = r.readLine()) != null) {
      if (line.isBlank()) {
        continue;
      }
      if (line.contains("\"nemesis\"")) {
        JsonNode n = Json.MAPPER.readTree(line);
        if (NemesisEvent.isNemesisLine(n)) {
          nemesis.add(NemesisEvent.fromJson(n));
          continue;
        }
      }
      if (line.contains("\"" + SetRead.F + "\"")) {
        JsonNode n = Json.MAPPER.readTree(line);
        if (SetRead.isSetReadLine(n)) {
          setReads.add(n);
          continue;
        }
      }
      ops.append(line).append('\n');
    }
    return new HistoryFile(History.readJsonLines(new StringReader(ops.toString())), nemesis, setReads.reads());
  }
}
