import { useCallback, useEffect, useRef, useState } from 'react';

export interface OnScreenOptions {
  /** IntersectionObserver root margin: count an element as on screen this far outside the viewport (default `'100px'`) */
  rootMargin?: string | undefined;
  /** what to assume before the first observation (default true: the first render asks for the full rate) */
  initial?: boolean | undefined;
}

export interface OnScreen<E extends Element> {
  /** put on the element to watch: `<tr ref={ref}>` */
  ref: (el: E | null) => void;
  /** whether the element is on screen; always true where IntersectionObserver does not exist */
  visible: boolean;
}

/**
 * Whether an element is on screen, from an IntersectionObserver. Pass `visible` to the hooks
 * (`useQuote(symbol, { visible })`) and off-screen rows get the server's slow tier. Whether the
 * whole page is hidden is followed by the client itself (document.visibilityState).
 */
export function useOnScreen<E extends Element = Element>(opts: OnScreenOptions = {}): OnScreen<E> {
  const [visible, setVisible] = useState(opts.initial ?? true);
  const [el, setEl] = useState<E | null>(null);
  const margin = opts.rootMargin ?? '100px';
  const observer = useRef<IntersectionObserver | undefined>(undefined);
  useEffect(() => {
    if (!el || typeof IntersectionObserver !== 'function') return;
    const io = new IntersectionObserver(
      (entries) => {
        const last = entries[entries.length - 1];
        if (last) setVisible(last.isIntersecting);
      },
      { rootMargin: margin },
    );
    observer.current = io;
    io.observe(el);
    return () => {
      io.disconnect();
      observer.current = undefined;
    };
  }, [el, margin]);
  const ref = useCallback((node: E | null) => setEl(node), []);
  return { ref, visible: typeof IntersectionObserver === 'function' ? visible : true };
}
