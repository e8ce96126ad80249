/** Managed focus: after a navigation or an action, move focus to where its result
 * is, so keyboard and screen-reader users are not left on <body>. */

export function focusHeading(selector = "main h1"): void {
  const target = document.querySelector<HTMLElement>(selector);
  if (!target || target.contains(document.activeElement)) return;
  // an element inside the page already holds focus (the user moved on): leave it
  const active = document.activeElement;
  if (selector === "main h1" && active && active !== document.body && active.closest("main")) return;
  if (!target.matches("a, button, input, select, textarea, [tabindex]")) target.tabIndex = -1;
  target.focus({ preventScroll: selector === "main h1" });
}
