import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;

/**
 * SeqDiagram draws a sequence diagram as a PNG from a small text file (see write-path.seq for the
 * format), so that the pictures of docs/architecture.md come from text sources in the repository and a
 * change to the code can change its picture in the same commit. Needs only the JDK (headless AWT):
 *
 * <pre>java docs/architecture/SeqDiagram.java docs/architecture/write-path.seq</pre>
 */
public final class SeqDiagram {
  private static final int COL = 230;
  private static final int TOP = 84;
  private static final int ROW = 34;
  private static final int MARGIN = 20;

  private record Participant(String name, String title, String subtitle) {}

  private record Step(String from, String to, String label) {
    boolean note() {
      return from == null;
    }
  }

  public static void main(String[] args) throws IOException {
    Path src = Path.of(args[0]);
    String out = args.length > 1 ? args[1] : src.toString().replaceFirst("\\.[^.]+$", "") + ".png";
    Map<String, Participant> parts = new LinkedHashMap<>();
    List<Step> steps = new ArrayList<>();
    for (String raw : Files.readAllLines(src)) {
      String line = raw.strip();
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      if (line.startsWith("participant ")) {
        String rest = line.substring("participant ".length());
        int colon = rest.indexOf(':');
        String[] titles = rest.substring(colon + 1).split("\\|", 2);
        String name = rest.substring(0, colon).strip();
        parts.put(name, new Participant(name, titles[0].strip(), titles.length > 1 ? titles[1].strip() : ""));
      } else if (line.startsWith("note:")) {
        steps.add(new Step(null, null, line.substring(5).strip()));
      } else {
        int colon = line.indexOf(':');
        String[] ends = line.substring(0, colon).split("->");
        Step s = new Step(ends[0].strip(), ends[1].strip(), line.substring(colon + 1).strip());
        if (!parts.containsKey(s.from()) || !parts.containsKey(s.to())) {
          throw new IllegalArgumentException(src + ": unknown participant in \"" + line + "\"");
        }
        steps.add(s);
      }
    }
    int width = MARGIN * 2 + COL * parts.size();
    int height = TOP + ROW * (steps.size() + 1) + MARGIN;
    BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = img.createGraphics();
    g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
    g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
    g.setColor(Color.WHITE);
    g.fillRect(0, 0, width, height);
    Map<String, Integer> x = new LinkedHashMap<>();
    int i = 0;
    for (Participant p : parts.values()) {
      int cx = MARGIN + COL / 2 + COL * i++;
      x.put(p.name(), cx);
      g.setColor(new Color(0xEEF3FB));
      g.fillRoundRect(cx - COL / 2 + 6, MARGIN - 8, COL - 12, TOP - 30, 12, 12);
      g.setColor(new Color(0x5B7DB1));
      g.drawRoundRect(cx - COL / 2 + 6, MARGIN - 8, COL - 12, TOP - 30, 12, 12);
      center(g, p.title(), cx, MARGIN + 12, new Font(Font.SANS_SERIF, Font.BOLD, 13), new Color(0x222222));
      center(g, p.subtitle(), cx, MARGIN + 32, new Font(Font.SANS_SERIF, Font.PLAIN, 11), new Color(0x555555));
      g.setColor(new Color(0x99AAAA));
      g.setStroke(new BasicStroke(1, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10, new float[] {4, 3}, 0));
      g.drawLine(cx, TOP - 22, cx, height - MARGIN);
      g.setStroke(new BasicStroke(1));
    }
    Font label = new Font(Font.SANS_SERIF, Font.PLAIN, 12);
    for (int k = 0; k < steps.size(); k++) {
      Step s = steps.get(k);
      int y = TOP + ROW * (k + 1);
      if (s.note()) {
        g.setColor(new Color(0xFFF8E1));
        g.fillRoundRect(MARGIN, y - 17, width - 2 * MARGIN, 24, 8, 8);
        g.setColor(new Color(0xD9B44A));
        g.drawRoundRect(MARGIN, y - 17, width - 2 * MARGIN, 24, 8, 8);
        center(g, s.label(), width / 2, y, label, new Color(0x6B5200));
      } else if (s.from().equals(s.to())) {
        int cx = x.get(s.from());
        g.setColor(new Color(0x5B7DB1));
        g.fillRect(cx - 5, y - 13, 10, 17);
        g.setFont(label);
        g.setColor(new Color(0x222222));
        int w = g.getFontMetrics().stringWidth(s.label());
        // right of the bar, or left of it where the picture ends
        g.drawString(s.label(), cx + 12 + w > width - 4 ? cx - 12 - w : cx + 12, y);
      } else {
        int x1 = x.get(s.from());
        int x2 = x.get(s.to());
        int dir = x2 > x1 ? 1 : -1;
        g.setColor(new Color(0x333333));
        g.drawLine(x1, y, x2 - dir * 2, y);
        g.fillPolygon(new int[] {x2, x2 - dir * 10, x2 - dir * 10}, new int[] {y, y - 5, y + 5}, 3);
        center(g, s.label(), (x1 + x2) / 2, y - 6, label, new Color(0x222222));
      }
    }
    g.dispose();
    ImageIO.write(img, "png", new File(out));
    System.out.println("wrote " + out);
  }

  private static void center(Graphics2D g, String s, int cx, int y, Font f, Color c) {
    g.setFont(f);
    g.setColor(c);
    g.drawString(s, cx - g.getFontMetrics().stringWidth(s) / 2, y);
  }
}
