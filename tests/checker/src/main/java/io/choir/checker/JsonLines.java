package io.choir.checker;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.Reader;
import java.io.Writer;
import java.util.HashMap;
import java.util.Map;

/**
 * JsonLines reads and writes histories as JSON lines, one event per line, so that a harness can stream
 * its history to disk as it runs and the checker (or a human with {@code jq}) can read it back later.
 *
 * <p>Fields of each line:
 *
 * <pre>
 * process  integer, required      the process (client) id
 * type     string,  required      "invoke" | "ok" | "fail" | "info"
 * f        string,  on invoke     "read" | "write" | "cas" (optional on completions: taken from the invoke)
 * key      string,  on invoke     the key (optional on completions)
 * value    integer or null        write: the value written; ok read: the value read (null or missing = absent)
 * expected integer or null        cas: the expected value (null or missing = absent)
 * new      integer                cas: the new value
 * time     integer, required      nanoseconds, non-decreasing
 * node     string,  optional      replica or connection, for reports
 * </pre>
 *
 * Example: {@code {"process":1,"type":"invoke","f":"cas","key":"k1","expected":2,"new":3,"time":1200}}.
 * Unknown fields are ignored; blank lines are skipped.
 */
final class JsonLines {
  static final ObjectMapper MAPPER = new ObjectMapper();

  private JsonLines() {}

  static History read(Reader in) throws IOException {
    BufferedReader r = in instanceof BufferedReader b ? b : new BufferedReader(in);
    History.Builder builder = History.builder();
    Map<Long, Operation> pending = new HashMap<>();
    String line;
    int lineNo = 0;
    while ((line = r.readLine()) != null) {
      lineNo++;
      if (line.isBlank()) {
        continue;
      }
      try {
        JsonNode n = MAPPER.readTree(line);
        if (n == null || !n.isObject()) {
          throw new IllegalArgumentException("expected a JSON object");
        }
        long process = requiredLong(n, "process");
        EventType type = EventType.fromJsonName(requiredText(n, "type"));
        long time = requiredLong(n, "time");
        String node = n.hasNonNull("node") ? n.get("node").asText() : null;
        Operation invoked = pending.get(process);
        OpType f = n.hasNonNull("f") ? OpType.fromJsonName(n.get("f").asText())
            : invoked != null && type != EventType.INVOKE ? invoked.type() : null;
        String key = n.hasNonNull("key") ? n.get("key").asText()
            : invoked != null && type != EventType.INVOKE ? invoked.key() : null;
        if (f == null || key == null) {
          throw new IllegalArgumentException(type == EventType.INVOKE ? "an invoke needs f and key"
              : "completion without an outstanding invocation");
        }
        Long value = optionalLong(n, "value");
        Long expected = optionalLong(n, "expected");
        Long newValue = optionalLong(n, "new");
        if (type != EventType.INVOKE && invoked != null && f == invoked.type() && f != OpType.READ) {
          // completions may omit the input fields; fill them from the invocation
          if (!n.hasNonNull("value")) {
            value = invoked.value();
          }
          if (!n.has("expected")) {
            expected = invoked.expected();
          }
          if (!n.hasNonNull("new")) {
            newValue = invoked.newValue();
          }
        }
        if (f == OpType.READ && type != EventType.OK) {
          value = null;
        }
        Operation op = new Operation(process, f, key, value, expected, newValue);
        builder.add(new Event(type, op, time, node));
        if (type == EventType.INVOKE) {
          pending.put(process, op);
        } else {
          pending.remove(process);
        }
      } catch (JsonProcessingException e) {
        throw new IOException("line " + lineNo + ": not JSON: " + e.getOriginalMessage(), e);
      } catch (IllegalArgumentException | NullPointerException e) {
        throw new IllegalArgumentException("line " + lineNo + ": " + e.getMessage(), e);
      }
    }
    return builder.build();
  }

  static void write(History h, Writer out) throws IOException {
    JsonFactory factory = MAPPER.getFactory();
    for (Event e : h.events()) {
      JsonGenerator g = factory.createGenerator(out);
      g.disable(JsonGenerator.Feature.AUTO_CLOSE_TARGET);
      Operation op = e.op();
      g.writeStartObject();
      g.writeNumberField("process", op.process());
      g.writeStringField("type", e.type().jsonName());
      g.writeStringField("f", op.type().jsonName());
      g.writeStringField("key", op.key());
      switch (op.type()) {
        case READ -> {
          if (e.type() == EventType.OK) {
            writeLong(g, "value", op.value());
          }
        }
        case WRITE -> writeLong(g, "value", op.value());
        case CAS -> {
          writeLong(g, "expected", op.expected());
          writeLong(g, "new", op.newValue());
        }
        default -> throw new AssertionError(op.type());
      }
      g.writeNumberField("time", e.timeNanos());
      if (e.node() != null) {
        g.writeStringField("node", e.node());
      }
      g.writeEndObject();
      g.flush();
      out.write('\n');
    }
    out.flush();
  }

  private static void writeLong(JsonGenerator g, String field, Long v) throws IOException {
    if (v == null) {
      g.writeNullField(field);
    } else {
      g.writeNumberField(field, v);
    }
  }

  private static long requiredLong(JsonNode n, String field) {
    Long v = optionalLong(n, field);
    if (v == null) {
      throw new IllegalArgumentException("missing " + field);
    }
    return v;
  }

  private static String requiredText(JsonNode n, String field) {
    JsonNode v = n.get(field);
    if (v == null || !v.isTextual()) {
      throw new IllegalArgumentException("missing " + field);
    }
    return v.asText();
  }

  private static Long optionalLong(JsonNode n, String field) {
    JsonNode v = n.get(field);
    if (v == null || v.isNull()) {
      return null;
    }
    if (!v.isIntegralNumber() || !v.canConvertToLong()) {
      throw new IllegalArgumentException(field + " must be an integer, got " + v);
    }
    return v.longValue();
  }
}
