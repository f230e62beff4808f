/**
 * The timeline: a histogram of versions created (up) and deleted (down) over
 * time for the current folder, drawn on a canvas. A click picks a snapshot
 * time, a drag picks a slice window; the arrow keys move the time.
 */
import * as React from 'react';

import { InfinstorModel } from '../model';
import { ITimeline } from '../api/types';
import {
  formatClock,
  formatDate,
  formatTime,
  secondEnd,
  secondStart,
  TimeDisplay
} from '../time';
import { trans } from '../i18n';

/** Colours of the drawing, read from the theme's CSS variables. */
export interface ITimelineColors {
  created: string;
  deleted: string;
  axis: string;
  marker: string;
  window: string;
}

/** What is chosen on the timeline. */
export type TimelineSelection =
  | { kind: 'snapshot'; at: number }
  | { kind: 'slice'; start: number; end: number }
  | { kind: 'none' };

/** The time span the drawing covers: [start, end). */
export function timelineSpan(t: ITimeline): [number, number] {
  const end = t.start_ms + Math.max(1, t.bin_ms * t.created.length);
  return [t.start_ms, end];
}

/** The time at horizontal position `x` of a drawing `width` pixels wide. */
export function timeAt(t: ITimeline, x: number, width: number): number {
  const [a, b] = timelineSpan(t);
  const f = Math.min(1, Math.max(0, x / Math.max(1, width)));
  return Math.min(b - 1, Math.floor(a + f * (b - a)));
}

/** The horizontal position of time `ms`, clamped to the drawing. */
export function xAt(t: ITimeline, ms: number, width: number): number {
  const [a, b] = timelineSpan(t);
  const f = (ms - a) / Math.max(1, b - a);
  return Math.min(width, Math.max(0, f * width));
}

/**
 * Draw the histogram and the selection. Bins are summed per pixel column, so
 * the cost is O(bins + width) whatever the number of bins.
 */
export function drawTimeline(
  ctx: CanvasRenderingContext2D,
  width: number,
  height: number,
  t: ITimeline,
  selection: TimelineSelection,
  colors: ITimelineColors,
  drag: { start: number; end: number } | null = null
): void {
  ctx.clearRect(0, 0, width, height);
  const n = t.created.length;
  const baseline = Math.round(height * 0.66) + 0.5;
  const upSpace = baseline - 3;
  const downSpace = height - baseline - 2;
  const cols = Math.max(1, Math.floor(width));
  const up = new Float64Array(cols);
  const down = new Float64Array(cols);
  const perCol = n / cols;
  for (let i = 0; i < n; i++) {
    const c = Math.min(cols - 1, Math.floor(i / perCol));
    up[c] += t.created[i];
    down[c] += t.deleted[i] ?? 0;
  }
  let maxUp = 0;
  let maxDown = 0;
  for (let c = 0; c < cols; c++) {
    if (up[c] > maxUp) {
      maxUp = up[c];
    }
    if (down[c] > maxDown) {
      maxDown = down[c];
    }
  }
  const maxAll = Math.max(maxUp, maxDown, 1);
  // With fewer bins than pixels each bin gets a bar of its own width.
  const step = n <= cols ? width / n : 1;
  let barWidth = 1;
  let inset = 0;
  if (n <= cols) {
    barWidth = step > 12 ? step * 0.7 : Math.max(1, step - (step > 4 ? 1 : 0));
    inset = step > 12 ? (step - barWidth) / 2 : 0;
  }
  const count = n <= cols ? n : cols;
  ctx.fillStyle = colors.created;
  for (let c = 0; c < count; c++) {
    const v = n <= cols ? t.created[c] : up[c];
    if (v > 0) {
      const h = Math.max(1, (v / maxAll) * upSpace);
      ctx.fillRect(c * step + inset, baseline - h, barWidth, h);
    }
  }
  ctx.fillStyle = colors.deleted;
  for (let c = 0; c < count; c++) {
    const v = n <= cols ? (t.deleted[c] ?? 0) : down[c];
    if (v > 0) {
      const h = Math.max(1, (v / maxAll) * downSpace);
      ctx.fillRect(c * step + inset, baseline, barWidth, h);
    }
  }
  ctx.strokeStyle = colors.axis;
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(0, baseline);
  ctx.lineTo(width, baseline);
  ctx.stroke();

  const drawWindow = (a: number, b: number) => {
    const x0 = xAt(t, a, width);
    const x1 = Math.max(x0 + 2, xAt(t, b, width));
    ctx.globalAlpha = 0.22;
    ctx.fillStyle = colors.window;
    ctx.fillRect(x0, 0, x1 - x0, height);
    ctx.globalAlpha = 1;
    ctx.fillStyle = colors.marker;
    ctx.fillRect(x0, 0, 2, height);
    ctx.fillRect(x1 - 2, 0, 2, height);
  };
  if (drag) {
    drawWindow(Math.min(drag.start, drag.end), Math.max(drag.start, drag.end));
  } else if (selection.kind === 'slice') {
    drawWindow(selection.start, selection.end);
  } else if (selection.kind === 'snapshot') {
    const x = Math.round(xAt(t, selection.at, width));
    ctx.fillStyle = colors.marker;
    ctx.fillRect(Math.min(width - 2, Math.max(0, x - 1)), 0, 2, height);
    // A small handle on top.
    ctx.beginPath();
    ctx.moveTo(x - 5, 0);
    ctx.lineTo(x + 5, 0);
    ctx.lineTo(x, 6);
    ctx.closePath();
    ctx.fill();
  }
}

function themeColors(node: Element): ITimelineColors {
  const style = getComputedStyle(node);
  const v = (name: string, fallback: string) =>
    style.getPropertyValue(name).trim() || fallback;
  return {
    created: v('--jp-brand-color1', '#1976d2'),
    deleted: v('--jp-error-color1', '#d32f2f'),
    axis: v('--jp-border-color1', '#bdbdbd'),
    marker: v('--jp-warn-color0', '#f57c00'),
    window: v('--jp-warn-color1', '#ff9800')
  };
}

/** The selection the model's view makes on the timeline. */
export function modelSelection(model: InfinstorModel): TimelineSelection {
  switch (model.mode) {
    case 'snapshot':
      return model.atMs === null
        ? { kind: 'none' }
        : { kind: 'snapshot', at: model.atMs };
    case 'slice':
      return model.sliceStartMs === null || model.sliceEndMs === null
        ? { kind: 'none' }
        : { kind: 'slice', start: model.sliceStartMs, end: model.sliceEndMs };
    case 'label': {
      const spec = model.spec;
      if (spec && spec.kind === 'slice' && spec.start_ms !== null) {
        return { kind: 'slice', start: spec.start_ms, end: spec.end_ms };
      }
      return spec ? { kind: 'snapshot', at: spec.end_ms } : { kind: 'none' };
    }
    default:
      return { kind: 'none' };
  }
}

const HEIGHT = 56;
const DRAG_THRESHOLD = 4;

export function Timeline(props: {
  model: InfinstorModel;
  display: TimeDisplay;
}): JSX.Element {
  const { model, display } = props;
  const t = model.timeline;
  const wrapRef = React.useRef<HTMLDivElement>(null);
  const canvasRef = React.useRef<HTMLCanvasElement>(null);
  const [width, setWidth] = React.useState(0);
  const [theme, setTheme] = React.useState(0);
  const [drag, setDrag] = React.useState<{ start: number; end: number } | null>(
    null
  );
  const [hover, setHover] = React.useState<{ x: number; ms: number } | null>(
    null
  );
  const tipRef = React.useRef<HTMLDivElement>(null);
  const [tipWidth, setTipWidth] = React.useState(0);
  React.useLayoutEffect(() => {
    const w = tipRef.current?.offsetWidth ?? 0;
    if (w !== tipWidth) {
      setTipWidth(w);
    }
  });
  const press = React.useRef<{
    x: number;
    ms: number;
    dragging: boolean;
  } | null>(null);
  const selection = modelSelection(model);

  React.useLayoutEffect(() => {
    const node = wrapRef.current;
    if (!node) {
      return;
    }
    setWidth(node.clientWidth);
    if (typeof ResizeObserver === 'undefined') {
      return;
    }
    const observer = new ResizeObserver(() => setWidth(node.clientWidth));
    observer.observe(node);
    return () => observer.disconnect();
  }, [t !== null]);

  // Redraw when the theme changes (its colours are CSS variables).
  React.useEffect(() => {
    const observer = new MutationObserver(() => setTheme(x => x + 1));
    observer.observe(document.body, {
      attributes: true,
      attributeFilter: ['data-jp-theme-name', 'data-jp-theme-light']
    });
    return () => observer.disconnect();
  }, []);

  const selKey = JSON.stringify(selection);
  React.useLayoutEffect(() => {
    const canvas = canvasRef.current;
    if (!canvas || !t || width <= 0) {
      return;
    }
    const began = performance.now();
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(HEIGHT * dpr);
    canvas.style.width = `${width}px`;
    canvas.style.height = `${HEIGHT}px`;
    const ctx = canvas.getContext('2d');
    if (!ctx) {
      return;
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    drawTimeline(ctx, width, HEIGHT, t, selection, themeColors(canvas), drag);
    canvas.dataset.drawMs = (performance.now() - began).toFixed(2);
    canvas.dataset.bins = String(t.created.length);
  }, [t, width, selKey, drag, theme]);

  if (model.timelineError) {
    return (
      <div className="jp-Infinstor-error" role="alert">
        {model.timelineError}
      </div>
    );
  }
  if (!t) {
    return (
      <div className="jp-Infinstor-note">
        {model.bucket
          ? model.timelineLoading
            ? trans.__('Loading the timeline…')
            : trans.__('No timeline.')
          : trans.__('Choose a bucket to see its timeline.')}
      </div>
    );
  }
  const total = t.created.reduce((a, b) => a + b, 0);
  if (total === 0 && t.deleted.every(d => d === 0)) {
    return (
      <div className="jp-Infinstor-note">
        {trans.__('No history under this folder yet.')}
      </div>
    );
  }

  const [spanStart] = timelineSpan(t);
  const lastSecondEnd = secondEnd(Math.max(spanStart, t.end_ms));
  const localX = (event: React.PointerEvent | React.MouseEvent) => {
    const rect = (event.currentTarget as HTMLElement).getBoundingClientRect();
    return event.clientX - rect.left;
  };

  const onPointerDown = (event: React.PointerEvent<HTMLCanvasElement>) => {
    if (event.button !== 0) {
      return;
    }
    const x = localX(event);
    press.current = { x, ms: timeAt(t, x, width), dragging: false };
    event.currentTarget.setPointerCapture?.(event.pointerId);
    event.currentTarget.focus();
  };
  const onPointerMove = (event: React.PointerEvent<HTMLCanvasElement>) => {
    const x = localX(event);
    const ms = timeAt(t, x, width);
    setHover({ x, ms });
    const p = press.current;
    if (p) {
      if (!p.dragging && Math.abs(x - p.x) >= DRAG_THRESHOLD) {
        p.dragging = true;
      }
      if (p.dragging) {
        setDrag({ start: p.ms, end: ms });
      }
    }
  };
  const onPointerUp = (event: React.PointerEvent<HTMLCanvasElement>) => {
    const p = press.current;
    press.current = null;
    if (!p) {
      return;
    }
    const ms = timeAt(t, localX(event), width);
    setDrag(null);
    if (p.dragging) {
      const a = Math.min(p.ms, ms);
      const b = Math.max(p.ms, ms);
      model.setSlice(secondStart(a), secondEnd(b));
    } else {
      model.setSnapshot(secondEnd(ms));
    }
  };

  const current =
    selection.kind === 'snapshot'
      ? selection.at
      : selection.kind === 'slice'
        ? selection.end
        : lastSecondEnd;
  const binMs = Math.max(1000, Math.ceil(t.bin_ms / 1000) * 1000);
  const clamp = (ms: number) =>
    Math.min(lastSecondEnd, Math.max(secondEnd(spanStart), ms));
  const onKeyDown = (event: React.KeyboardEvent) => {
    const step = event.shiftKey ? binMs * 10 : binMs;
    let delta = 0;
    if (event.key === 'ArrowLeft' || event.key === 'ArrowDown') {
      delta = -step;
    } else if (event.key === 'ArrowRight' || event.key === 'ArrowUp') {
      delta = step;
    } else if (event.key === 'Home') {
      model.setSnapshot(secondEnd(spanStart));
      event.preventDefault();
      return;
    } else if (event.key === 'End') {
      model.setSnapshot(lastSecondEnd);
      event.preventDefault();
      return;
    } else {
      return;
    }
    event.preventDefault();
    if (selection.kind === 'slice') {
      model.setSlice(selection.start + delta, selection.end + delta);
    } else {
      model.setSnapshot(clamp(secondEnd(current + delta)));
    }
  };

  const hoverBin = hover
    ? Math.min(
        t.created.length - 1,
        Math.floor((hover.ms - t.start_ms) / t.bin_ms)
      )
    : -1;

  return (
    <div className="jp-Infinstor-timeline" ref={wrapRef}>
      <canvas
        ref={canvasRef}
        className="jp-Infinstor-timeline-canvas"
        data-testid="timeline"
        tabIndex={0}
        role="slider"
        aria-label={trans.__(
          'Time: click for a snapshot, drag for a slice; arrow keys move'
        )}
        aria-valuemin={spanStart}
        aria-valuemax={lastSecondEnd}
        aria-valuenow={current}
        aria-valuetext={
          selection.kind === 'slice'
            ? trans.__(
                '%1 to %2',
                formatTime(selection.start, display),
                formatTime(selection.end, display)
              )
            : formatTime(current, display)
        }
        onPointerDown={onPointerDown}
        onPointerMove={onPointerMove}
        onPointerUp={onPointerUp}
        onPointerLeave={() => setHover(null)}
        onKeyDown={onKeyDown}
        style={{ height: HEIGHT }}
      />
      {hover && hoverBin >= 0 && (
        <div
          ref={tipRef}
          className="jp-Infinstor-timeline-tip"
          data-testid="timeline-tip"
          style={{
            // Below the bars, over the axis labels: inside the panel, clear of
            // the spec field and its Go button above; centred on the pointer
            // and kept within the timeline's width. Wider than the timeline
            // (a narrow sidebar), it wraps over the top of the bars instead.
            top: tipWidth >= width - 1 ? 2 : HEIGHT + 1,
            maxWidth: width,
            left: Math.min(
              Math.max(0, hover.x - tipWidth / 2),
              Math.max(0, width - tipWidth)
            )
          }}
        >
          {trans.__(
            '%1 · %2 created, %3 deleted',
            formatTime(secondEnd(hover.ms), display),
            t.created[hoverBin] ?? 0,
            t.deleted[hoverBin] ?? 0
          )}
        </div>
      )}
      <div className="jp-Infinstor-timeline-axis">
        <span>
          {formatDate(spanStart, display)} {formatClock(spanStart, display)}
        </span>
        <span>
          {formatDate(t.end_ms, display) === formatDate(spanStart, display)
            ? ''
            : `${formatDate(t.end_ms, display)} `}
          {formatClock(t.end_ms, display)}
        </span>
      </div>
    </div>
  );
}
