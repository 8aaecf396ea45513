# SPDX-License-Identifier: GPL-3.0-or-later
# What `cmake --install` puts beside the programs (which cli/, indexer/ and docs/ install:
# binary, workers, phone module, completion, man pages), and the Debian package (CPack):
#   cpack -G DEB --config build/CPackConfig.cmake   ->  maildsar_VERSION_ARCH.deb
# The .deb is laid out under /usr whatever prefix the tree was configured with: the program
# finds its workers and phone module relative to itself, and the units are written with the
# prefix at install time (cmake/InstallUnit.cmake). docs/operations.md "Installing".
include(GNUInstallDirs)

set(MAILDSAR_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
    "systemd units, relative to the install prefix")
foreach(unit maildsar-index.service maildsar-index.timer maildsar-agent.socket maildsar-agent.service)
  install(CODE "set(MAILDSAR_UNIT_SRC \"${PROJECT_SOURCE_DIR}/samples/systemd/${unit}\")
                set(MAILDSAR_UNIT_TMP \"${PROJECT_BINARY_DIR}/systemd/${unit}\")
                set(MAILDSAR_UNIT_DIR \"${MAILDSAR_SYSTEMD_UNIT_DIR}\")")
  install(SCRIPT ${PROJECT_SOURCE_DIR}/cmake/InstallUnit.cmake)
endforeach()

set(MAILDSAR_DOC_DIR ${CMAKE_INSTALL_DATADIR}/doc/maildsar)
install(FILES samples/maildsar.json samples/subject.json DESTINATION ${MAILDSAR_DOC_DIR}/examples)
install(FILES docs/operations.md docs/cli.md docs/config.md docs/exit-codes.md docs/schemata.md
              docs/workflow.md README.md packaging/copyright
        DESTINATION ${MAILDSAR_DOC_DIR})

# Only in the package: /etc/maildsar/maildsar.json, a conffile. A plain `cmake --install` never
# writes to /etc (it would replace an administrator's config).
install(FILES packaging/maildsar.json DESTINATION /etc/maildsar
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ COMPONENT deb_conffiles EXCLUDE_FROM_ALL)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME maildsar)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "maildsar maintainers <maildsar@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "answers GDPR data-subject requests across a mail estate")
set(CPACK_PACKAGE_DESCRIPTION "maildsar finds everything a mail estate (Maildir, mbox, PST, quarantine, MTA queues, delivery logs) holds about a person from an identity-keyed Xapian index, compiles the Art. 15 access package and carries out Art. 17 erasure through an approved, audited manifest.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION mail)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# libarchive13 is opened with dlopen (connectors/libarchive.hpp), so dpkg-shlibdeps cannot see it.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, libarchive13 (>= 3.6)")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "man-db, openssh-client")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/postinst ${PROJECT_SOURCE_DIR}/packaging/postrm
    ${PROJECT_SOURCE_DIR}/packaging/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# One package of the programs' component (Unspecified) and the conffile's (excluded from a
# plain install). DESTDIR staging, so that the absolute /etc lands in the package only.
set(CPACK_INSTALL_CMAKE_PROJECTS
    "${PROJECT_BINARY_DIR};maildsar;Unspecified;/" "${PROJECT_BINARY_DIR};maildsar;deb_conffiles;/")
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
include(CPack)
