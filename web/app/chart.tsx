// A uPlot chart as a Preact component: lines or bars over time, a drag across it zooms (the page asks
// the server for that window), and bands and ticks mark alert episodes (an incident's span, the moment
// an alert fired). uPlot draws on a canvas: 50 KB for charts of tens of thousands of points.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Marker {
  fromMs: number;
  /** null: still going (to the chart's end). */
  toMs: number | null;
  label: string;
  colour: string;
}

export interface ChartProps {
  title: string;
  /** Seconds since the epoch (uPlot's x unit). */
  xs: number[];
  series: Array<{ label: string; values: Array<number | null>; colour: string; format?: (v: number) => string }>;
  bars?: boolean;
  height?: number;
  markers?: Marker[];
  /** A drag over the chart: the window in ms. */
  onZoom?: (fromMs: number, toMs: number) => void;
  testId?: string;
}

export function Chart(props: ChartProps) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const latest = useRef(props);
  latest.current = props;

  useEffect(() => {
    const root = el.current;
    if (!root) return;
    const width = Math.max(300, root.clientWidth);
    const markersHook = (u: uPlot) => {
      const ctx = u.ctx;
      for (const m of latest.current.markers ?? []) {
        const x0 = u.valToPos(m.fromMs / 1000, "x", true);
        const x1 = m.toMs === null ? u.bbox.left + u.bbox.width : u.valToPos(m.toMs / 1000, "x", true);
        const left = Math.max(u.bbox.left, x0);
        const right = Math.min(u.bbox.left + u.bbox.width, Math.max(x1, x0 + 2));
        if (right < u.bbox.left || left > u.bbox.left + u.bbox.width) continue;
        ctx.save();
        ctx.fillStyle = `${m.colour}22`;
        ctx.fillRect(left, u.bbox.top, right - left, u.bbox.height);
        ctx.fillStyle = m.colour;
        ctx.fillRect(Math.max(u.bbox.left, x0) - 1, u.bbox.top, 2, u.bbox.height);
        ctx.restore();
      }
    };
    const opts: uPlot.Options = {
      title: props.title,
      width,
      height: props.height ?? 160,
      cursor: { drag: { x: true, y: false, setScale: false } },
      select: { show: true, left: 0, top: 0, width: 0, height: 0 },
      legend: { show: true },
      scales: { x: { time: true } },
      axes: [
        {},
        {
          size: 60,
          values: (_u, vals) => vals.map((v) => (props.series[0]?.format ? props.series[0].format(v) : String(v))),
        },
      ],
      series: [
        {},
        ...props.series.map((s) => ({
          label: s.label,
          stroke: s.colour,
          fill: props.bars ? `${s.colour}99` : `${s.colour}18`,
          width: 1.5,
          spanGaps: false,
          ...(s.format
            ? { value: (_u: uPlot, v: number | null) => (v === null ? "–" : (s.format as (v: number) => string)(v)) }
            : {}),
          ...(props.bars ? { paths: uPlot.paths.bars?.({ size: [0.9, 40] }) } : {}),
        })),
      ],
      hooks: {
        draw: [markersHook],
        setSelect: [
          (u: uPlot) => {
            if (u.select.width < 4) return;
            const from = u.posToVal(u.select.left, "x") * 1000;
            const to = u.posToVal(u.select.left + u.select.width, "x") * 1000;
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            latest.current.onZoom?.(Math.floor(from), Math.ceil(to));
          },
        ],
      },
    };
    const data = [props.xs, ...props.series.map((s) => s.values)] as uPlot.AlignedData;
    plot.current = new uPlot(opts, data, root);
    const resize = new ResizeObserver(() =>
      plot.current?.setSize({ width: Math.max(300, root.clientWidth), height: props.height ?? 160 }),
    );
    resize.observe(root);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
    // Rebuilt when the series change shape; data alone is set below.
  }, [props.series.length, props.bars, props.title]);

  useEffect(() => {
    plot.current?.setData([props.xs, ...props.series.map((s) => s.values)] as uPlot.AlignedData);
  }, [props.xs, props.series]);

  return <div class="chart" ref={el} data-testid={props.testId} />;
}
