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
 * {@link NemesisEvent}s. So a history can be re-checked or re-plotted after the run:
 * {@code HistoryFile.read(dir.resolve("history.jsonl"))}.
 *
 * <p>With jq, {@code jq -c 'select(.type != "nemesis")' history.jsonl} is the checker's input.
 *
 * @param history the client operations
 * @param nemesis the nemesis events in order
 */
public record HistoryFile(History history, List<NemesisEvent> nemesis) {
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
      ops.append(line).append('\n');
    }
    return new HistoryFile(History.readJsonLines(new StringReader(ops.toString())), List.copyOf(nemesis));
  }
}
