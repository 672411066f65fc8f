import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** Where the test suite builds the Worker bundle (ignored by git). */
export const BUILD_DIR = fileURLToPath(new URL("../.build/worker", import.meta.url));
/** Debian's python3, which has PyTorch; override with $PYTHON. */
export const PYTHON = process.env.PYTHON ?? "/usr/bin/python3";
