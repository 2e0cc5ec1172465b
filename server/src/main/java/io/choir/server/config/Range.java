package io.choir.server.config;

import java.util.List;
import java.util.stream.Collectors;

/**
 * Range is the set of values a setting accepts, as data rather than code: the loader checks a raw value
 * against it (through the parser {@link Setting} derives from it), and the README's settings table and
 * the flags' help print it, so what a reader is told and what the replica accepts cannot drift apart.
 */
public sealed interface Range {
  /** The accepted values in words, for the settings table: "576..65000", "true or false". */
  String describe();

  /**
   * A whole number in min..max; when zeroMeans is set, 0 is accepted too (below min) and means that,
   * so "0 or 4096.." is said once here rather than in a lambda.
   */
  record Whole(int min, int max, String zeroMeans) implements Range {
    @Override
    public String describe() {
      String span = min + ".." + (max == Integer.MAX_VALUE ? "" : String.valueOf(max));
      return zeroMeans == null ? span : "0 or " + span;
    }
  }

  /** true or false. */
  record Bool() implements Range {
    @Override
    public String describe() {
      return "true or false";
    }
  }

  /** Free text (a file name, a host); mayBeEmpty says whether "" is allowed. */
  record Text(boolean mayBeEmpty) implements Range {
    @Override
    public String describe() {
      return mayBeEmpty ? "text" : "text, not empty";
    }
  }

  /** One of a fixed list of words, compared without case (the value is kept in lower case). */
  record OneOf(List<String> values) implements Range {
    public OneOf {
      values = List.copyOf(values);
    }

    @Override
    public String describe() {
      return values.stream().map(v -> "`" + v + "`").collect(Collectors.joining(", "));
    }
  }

  /** A value of a structured form its own parser checks (a multicast group:port, the member list). */
  record Form(String form) implements Range {
    @Override
    public String describe() {
      return form;
    }
  }
}
