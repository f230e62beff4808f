import * as React from 'react';
import { flushSync } from 'react-dom';

/**
 * A windowed list of fixed-height rows: only the rows in view (plus a few
 * above and below) are in the DOM, so 100,000 entries scroll as smoothly as 10.
 */
export interface IVirtualListProps<T> {
  items: ReadonlyArray<T>;
  /** Height of every row, in pixels. */
  rowHeight: number;
  /** Render one row; `top` is its offset inside the scrolled content. */
  renderRow: (item: T, index: number, top: number) => React.ReactElement;
  /** Rows rendered beyond each edge of the view. */
  overscan?: number;
  /** Called when the last visible row index changes (to load more pages). */
  onVisibleRange?: (first: number, last: number) => void;
  /** Scroll so that this row is visible whenever it changes. */
  scrollToIndex?: number;
  className?: string;
  /** Props for the scrolling element (role, tabIndex, key handlers...). */
  containerProps?: React.HTMLAttributes<HTMLDivElement>;
  /** Shown instead of rows when there are none. */
  empty?: React.ReactNode;
}

export function VirtualList<T>(props: IVirtualListProps<T>): JSX.Element {
  const {
    items,
    rowHeight,
    renderRow,
    overscan = 8,
    onVisibleRange,
    scrollToIndex,
    className,
    containerProps,
    empty
  } = props;
  const ref = React.useRef<HTMLDivElement>(null);
  const [first, setFirst] = React.useState(0);
  const [height, setHeight] = React.useState(0);
  const firstRef = React.useRef(0);

  // Track the viewport height.
  React.useLayoutEffect(() => {
    const node = ref.current;
    if (!node) {
      return;
    }
    setHeight(node.clientHeight);
    if (typeof ResizeObserver === 'undefined') {
      return;
    }
    const observer = new ResizeObserver(() => {
      setHeight(node.clientHeight);
    });
    observer.observe(node);
    return () => observer.disconnect();
  }, []);

  const onScroll = React.useCallback(() => {
    const node = ref.current;
    if (!node) {
      return;
    }
    const next = Math.floor(node.scrollTop / rowHeight);
    if (next !== firstRef.current) {
      firstRef.current = next;
      // Scroll events come once per frame, just before it is painted: render
      // the rows now, so the frame shows them (an async render lags a frame).
      flushSync(() => setFirst(next));
    }
  }, [rowHeight]);

  // A shorter list (new folder, filter) may leave the scroll position past its end.
  React.useLayoutEffect(() => {
    const node = ref.current;
    if (node && first * rowHeight > items.length * rowHeight) {
      const next = Math.floor(node.scrollTop / rowHeight);
      firstRef.current = next;
      setFirst(next);
    }
  }, [items.length, rowHeight, first]);

  React.useEffect(() => {
    const node = ref.current;
    if (!node || scrollToIndex === undefined || scrollToIndex < 0) {
      return;
    }
    const top = scrollToIndex * rowHeight;
    if (top < node.scrollTop) {
      node.scrollTop = top;
    } else if (top + rowHeight > node.scrollTop + node.clientHeight) {
      node.scrollTop = top + rowHeight - node.clientHeight;
    }
  }, [scrollToIndex, rowHeight]);

  const visible = Math.max(1, Math.ceil(height / rowHeight));
  const start = Math.max(0, Math.min(first, items.length) - overscan);
  const end = Math.min(items.length, first + visible + overscan);
  const lastVisible = Math.min(items.length - 1, first + visible);

  React.useEffect(() => {
    onVisibleRange?.(first, lastVisible);
  }, [first, lastVisible, items.length, onVisibleRange]);

  const rows: React.ReactElement[] = [];
  for (let i = start; i < end; i++) {
    rows.push(renderRow(items[i], i, i * rowHeight));
  }

  return (
    <div
      {...containerProps}
      ref={ref}
      className={`jp-Infinstor-virtualList ${className ?? ''}`}
      onScroll={onScroll}
    >
      {items.length === 0 && empty ? (
        empty
      ) : (
        <div
          className="jp-Infinstor-virtualList-content"
          style={{ height: items.length * rowHeight }}
        >
          {rows}
        </div>
      )}
    </div>
  );
}
