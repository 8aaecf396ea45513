# SPDX-License-Identifier: GPL-3.0-or-later
# Run by `cmake --install` (and CPack): installs a systemd unit of samples/systemd/ with its
# /usr/local/ paths (the program, the docs) replaced by the prefix installed to — which CPack
# sets to /usr for the .deb, whatever the build tree was configured with.
# In: MAILDSAR_UNIT_SRC, MAILDSAR_UNIT_TMP (a file in the build tree), MAILDSAR_UNIT_DIR
# (relative to the prefix).
file(READ "${MAILDSAR_UNIT_SRC}" unit)
string(REPLACE "/usr/local/" "${CMAKE_INSTALL_PREFIX}/" unit "${unit}")
file(WRITE "${MAILDSAR_UNIT_TMP}" "${unit}")
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/${MAILDSAR_UNIT_DIR}" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES "${MAILDSAR_UNIT_TMP}")
