package io.choir.server.config;

import java.util.Collection;
import java.util.stream.Collectors;

/**
 * SettingsTable writes the README's settings tables (production, then test-only) from the declarations,
 * so the table is generated rather than kept by hand; ConfigReadmeTableTest fails when README.md holds
 * another text, and rewrites it when asked (see the comment above the table in README.md).
 */
public final class SettingsTable {
  /** The line before the generated text in README.md; the comment that follows it says how to regenerate. */
  public static final String BEGIN = "<!-- settings-table:begin";
  /** The line after the generated text in README.md. */
  public static final String END = "<!-- settings-table:end -->";

  private SettingsTable() {
  }

  /** Both tables in Markdown, each line ending in a newline. */
  public static String markdown() {
    Collection<Setting<?>> all = ServerConfig.settings().values();
    return table(all.stream().filter(s -> !s.testOnly()).toList())
        + "\nTest-only settings: tests set them to inject faults or break the protocol on purpose; leave them at"
        + " their defaults.\n\n"
        + table(all.stream().filter(Setting::testOnly).toList());
  }

  private static String table(Collection<Setting<?>> settings) {
    StringBuilder out = new StringBuilder("| setting | default | accepted | unit | meaning |\n|---|---|---|---|---|\n");
    for (Setting<?> s : settings) {
      String shown = s.show(s.defaultValue());
      out.append("| `").append(s.key()).append("` | ")
          .append(shown.isEmpty() ? "empty" : "`" + shown + "`").append(" | ")
          .append(cell(s.range().describe())).append(" | ")
          .append(s.unit().symbol()).append(" | ")
          .append(cell(s.description())).append(" |\n");
    }
    return out.toString();
  }

  private static String cell(String text) {
    return text.chars().mapToObj(c -> c == '|' ? "\\|" : String.valueOf((char) c)).collect(Collectors.joining());
  }
}
