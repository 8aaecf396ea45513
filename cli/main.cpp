// SPDX-License-Identifier: GPL-3.0-or-later
// PLACEHOLDER
int main() { return 0; }
