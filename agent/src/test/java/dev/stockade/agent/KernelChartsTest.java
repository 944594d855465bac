package dev.stockade.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.protocol.CellEvent;
import dev.stockade.protocol.ContextInfo;
import dev.stockade.protocol.CreateContext;
import dev.stockade.protocol.ExecuteCell;
import dev.stockade.protocol.Outcome;
import dev.stockade.protocol.link.AgentClient;
import java.io.IOException;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The kernel's chart extraction (kernel_charts.py) against the real agent and kernel: a figure's
 * result carries its E2B chart data beside the PNG through the agent protocol, and a figure the
 * extractor cannot read, or one past its bounds, still gives its PNG without failing the cell. The
 * chart shapes themselves are pinned through the official SDK by tests/e2b-js/test/charts.test.js.
 */
class KernelChartsTest {
    private static final Duration MAX = Duration.ofSeconds(30);

    private static AgentProcess agent;
    private static AgentClient client;
    private static ContextInfo ipython;
    private static ContextInfo plain;

    @BeforeAll
    static void start() throws IOException {
        agent = AgentProcess.start();
        client = agent.client;
        ipython = client.createContext(CreateContext.python());
        plain = client.createContext(new CreateContext("python", null, Map.of("STOCKADE_KERNEL_IPYTHON", "0"), null));
    }

    @AfterAll
    static void stop() throws IOException {
        agent.close();
    }

    /** Runs a cell that shows one figure and returns that figure's data map (it has a png). */
    private static Map<String, Object> figure(ContextInfo ctx, String code) {
        CellRun run = CellRun.collect(client.execute(new ExecuteCell(ctx.id(), code, Map.of(), 0, 0)), MAX);
        assertEquals(Outcome.OK, run.end().outcome(), run.toString());
        assertNull(run.error(), run.toString());
        List<CellEvent.Result> results = run.results();
        assertEquals(1, results.size(), run.toString());
        assertFalse(results.getFirst().isMainResult());
        assertNotNull(results.getFirst().data().get("png"), "the figure is still a png: " + run);
        return results.getFirst().data();
    }

    @Test
    void aFiguresChartTravelsBesideItsPngWithAndWithoutIPython() {
        String code = """
                import matplotlib.pyplot as plt
                plt.plot([0, 1, 2], [1.5, float('nan'), 2], label='a')
                plt.xlabel('t (s)')
                plt.title('T')
                plt.show()""";
        for (ContextInfo ctx : List.of(ipython, plain)) {
            Map<?, ?> chart = (Map<?, ?>) figure(ctx, code).get("chart");
            assertEquals("line", chart.get("type"), ctx.toString());
            assertEquals("T", chart.get("title"));
            assertEquals("s", chart.get("x_unit"));
            assertNull(chart.get("y_label"));
            Map<?, ?> line = (Map<?, ?>) ((List<?>) chart.get("elements")).getFirst();
            assertEquals("a", line.get("label"));
            assertEquals(List.of(List.of(0.0, 1.5), Arrays.asList(1.0, null), List.of(2.0, 2.0)), line.get("points"),
                    "NaN has no JSON form: null");
        }
    }

    @Test
    void horizontalBarsAndBoxesPutTheirCategoriesOnX() {
        Map<?, ?> bars = (Map<?, ?>) figure(ipython, """
                import matplotlib.pyplot as plt
                plt.barh(['p', 'q', 'r'], [2, 2, 2], label='same')
                plt.xlabel('amount (kg)')
                plt.show()""").get("chart");
        assertEquals("bar", bars.get("type"));
        assertEquals(Arrays.asList(null, "amount (kg)", null, "kg"),
                Arrays.asList(bars.get("x_label"), bars.get("y_label"), bars.get("x_unit"), bars.get("y_unit")));
        assertEquals(List.of(Map.of("label", "p", "group", "same", "value", 2.0), Map.of("label", "q", "group", "same", "value", 2.0),
                Map.of("label", "r", "group", "same", "value", 2.0)), bars.get("elements"));

        Map<?, ?> boxes = (Map<?, ?>) figure(ipython, """
                import matplotlib.pyplot as plt
                plt.boxplot([[1, 2, 3, 4, 5, 20]], labels=['only'], vert=False, patch_artist=True)
                plt.show()""").get("chart");
        assertEquals("box_and_whisker", boxes.get("type"));
        assertEquals(List.of(Map.of("label", "only", "min", 1.0, "first_quartile", 2.25, "median", 3.5,
                "third_quartile", 4.75, "max", 5.0, "outliers", List.of(20.0))), boxes.get("elements"));
    }

    /** Hostile or odd figures: the cell succeeds, the png shows, there is no chart, and it is quick. */
    @Test
    void aFigureTheExtractorCannotUseIsAPngOnly() {
        long t = System.nanoTime();
        Map<String, Object> points = figure(ipython, """
                import matplotlib.pyplot as plt
                import numpy as np
                plt.figure(figsize=(2, 2), dpi=20)
                plt.scatter(np.arange(300_000), np.arange(300_000))
                plt.show()""");
        assertFalse(points.containsKey("chart"), "over the budget of points: " + points.keySet());

        Map<String, Object> axes = figure(ipython, """
                import matplotlib.pyplot as plt
                fig, axs = plt.subplots(9, 9, figsize=(3, 3), dpi=20)
                for ax in axs.flat:
                    ax.plot([0, 1])
                plt.show()""");
        assertFalse(axes.containsKey("chart"), "over the number of Axes: " + axes.keySet());

        Map<String, Object> raising = figure(ipython, """
                import matplotlib.pyplot as plt
                from matplotlib.lines import Line2D
                class Sly(Line2D):
                    def get_xdata(self, orig=True):
                        raise RuntimeError('no data for you')
                fig, ax = plt.subplots()
                ax.add_line(Sly([0, 1], [0, 1]))
                plt.show()""");
        assertFalse(raising.containsKey("chart"), "an extractor error: " + raising.keySet());
        assertTrue(System.nanoTime() - t < 25_000_000_000L, "bounded work");

        Map<String, Object> blank = figure(ipython, "import matplotlib.pyplot as plt\nplt.figure()\nplt.show()");
        assertFalse(blank.containsKey("chart"), "nothing drawn: " + blank.keySet());
    }
}
