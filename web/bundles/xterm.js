// Entry of ui/lib/xterm.js (web/build.sh): the terminal emulator of a
// service's Terminal panel, loaded when a session starts.
export { Terminal } from '@xterm/xterm';
export { FitAddon } from '@xterm/addon-fit';
