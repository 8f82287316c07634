/** Light, dark, or the system's (the default): the only thing the dashboard keeps in localStorage. */
export type Theme = 'light' | 'dark' | 'system';
const KEY = 'oz-theme';

export function storedTheme(): Theme {
  const value = window.localStorage.getItem(KEY);
  return value === 'light' || value === 'dark' ? value : 'system';
}

export function applyTheme(theme: Theme): void {
  if (theme === 'system') {
    window.localStorage.removeItem(KEY);
    delete document.documentElement.dataset.theme;
  } else {
    window.localStorage.setItem(KEY, theme);
    document.documentElement.dataset.theme = theme;
  }
}

export function applyStoredTheme(): void {
  applyTheme(storedTheme());
}
